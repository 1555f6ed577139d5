package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"

	"portico/internal/cgi"
	"portico/internal/fastpath"
)

// Scripts on the fast path: a GET or HEAD without a body from an
// HTTP/1.1 client runs on the fast path's connection goroutine, with the
// same parameters, pool, retry and error rules as exchange.go, and answers
// what net/http's path answers, but for these differences in framing and
// timing: a body that has arrived whole within 32 KiB when the script
// pauses or ends goes out with Content-Length (net/http chunks those past
// 2 KiB); a Date from the script is replaced by the engine's (as nginx
// does); a client that goes away while the script thinks is noticed
// within a second (clientPoll), not at once.

// fastState is the scratch of one script request on the fast path.
type fastState struct {
	params, out, local []byte
	xff                [8]string
	keys               []string
	rr                 responseReader
	stderr             stderrLog
}

var fastStates = sync.Pool{New: func() any {
	return &fastState{params: make([]byte, 0, 2048), out: make([]byte, 0, 2048)}
}}

// serveScriptFast runs t for req, or declines (false) before anything is
// sent.
func (h *Handler) serveScriptFast(req *fastpath.Request, w *fastpath.ResponseWriter, t target) bool {
	if req.ProtoMinor != 1 || !errorPageSafe(w.DefaultHeaders()) {
		return false // HTTP/1.0 framing, and error pages, stay net/http's
	}
	if !h.enter() {
		return false
	}
	defer h.active.Done()
	st := fastStates.Get().(*fastState)
	defer func() {
		st.rr = responseReader{scratch: st.rr.scratch[:0]}
		st.stderr = stderrLog{}
		clear(st.xff[:])
		clear(st.keys)
		fastStates.Put(st)
	}()
	st.params = h.appendFastParams(st.params[:0], st, req, w, t)
	if len(st.params) > maxParamsBytes {
		h.log.Warn("fastcgi: request parameters too large", "script", t.name, "bytes", len(st.params))
		writeErrorFast(w, req, http.StatusRequestHeaderFieldsTooLarge, false)
		return true
	}
	st.out = appendBeginRequest(st.out[:0])
	st.out = appendStream(st.out, typeParams, st.params)
	st.out = appendRecord(st.out, typeStdin, nil)
	for attempt := 0; ; attempt++ {
		c, err := h.pool.get(context.Background())
		if err != nil {
			status, retryAfter := h.connectFailure(t, err, false)
			w.Refresh() // the wait for a slot may have been long
			writeErrorFast(w, req, status, retryAfter)
			return true
		}
		if !h.exchangeFast(st, req, w, t, c, c.reused && attempt == 0) {
			return true
		}
	}
}

// exchangeFast is exchange for the fast path: it sends the request on c,
// relays the response and hands c back to the pool. It returns true,
// having answered nothing, when mayRetry and the connection failed before
// any answer.
func (h *Handler) exchangeFast(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, t target, c *conn, mayRetry bool) (retry bool) {
	reusable := false
	defer func() {
		c.tc.watch = nil
		h.pool.release(c, reusable)
	}()
	if _, err := c.tc.write(st.out); err != nil {
		if mayRetry {
			return true
		}
		h.log.Error("fastcgi: sending request", "upstream", h.upstream, "script", t.name, "err", err)
		writeErrorFast(w, req, http.StatusBadGateway, false)
		return false
	}
	c.tc.watch = w

	rr := &st.rr
	st.stderr = stderrLog{h, t.name}
	*rr = responseReader{br: c.br, stderr: &st.stderr, scratch: rr.scratch}
	hr := headReader.Get().(*bufio.Reader)
	hr.Reset(rr)
	defer func() {
		hr.Reset(nil)
		headReader.Put(hr)
	}()
	resp, err := cgi.ParseResponseHeader(hr)
	// The wait may have been long: Date and the client's write deadlines
	// count from now.
	w.Refresh()
	if err != nil {
		clientGone := errors.Is(err, errCanceled)
		if mayRetry && !rr.got && !clientGone && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.tc.kill()
			return true
		}
		status, retryAfter := h.headerFailure(t, rr, err, clientGone)
		writeErrorFast(w, req, status, retryAfter)
		return false
	}

	status := resp.Status
	if status == 0 {
		status = http.StatusOK
		if resp.Location != "" {
			status = http.StatusFound // as nginx does for FastCGI
		}
	}
	declared := int64(-1)
	if v := resp.Header["Content-Length"]; len(v) > 0 {
		declared, _ = strconv.ParseInt(v[0], 10, 64) // digits only (cgi's parser)
	}
	h.writeHeadFast(st, w, resp, status)

	if req.Method == http.MethodHead || !statusHasBody(status) {
		if declared >= 0 && statusHasBody(status) {
			w.AddHeader("Content-Length", v0(resp.Header["Content-Length"]))
		}
		_, err = io.Copy(io.Discard, hr)
	} else if declared >= 0 {
		w.AddHeader("Content-Length", v0(resp.Header["Content-Length"]))
		err = copyDeclaredFast(w, hr, rr, declared)
	} else {
		err = copyBodyFast(w, hr, rr)
	}
	if err != nil {
		var we writeError
		if !errors.As(err, &we) && !errors.Is(err, errCanceled) {
			h.log.Error("fastcgi: response cut", "upstream", h.upstream, "script", t.name, "err", err)
		}
		// The body is cut: close the client's connection rather than
		// end the response as if it were complete.
		c.tc.kill()
		w.Abort()
		return false
	}
	if rr.protoStatus != statusRequestComplete {
		h.log.Warn("fastcgi: request not completed", "script", t.name, "status", protoStatusText(rr.protoStatus))
	}
	reusable = rr.ended && rr.protoStatus == statusRequestComplete
	return false
}

func v0(v []string) string { return v[0] }

// writeHeadFast starts the response with the script's fields, as exchange
// copies them into net/http's header map (sorted, as net/http writes
// them), less the framing, which the caller adds, and Date, which the
// engine writes. Without a Content-Type from the script, none is sent
// (net/http's path clears the site's, and sniffs nothing); a 304 has
// none either, as net/http drops it.
func (h *Handler) writeHeadFast(st *fastState, w *fastpath.ResponseWriter, resp *cgi.ResponseHeader, status int) {
	keys := st.keys[:0]
	for k := range resp.Header {
		switch k {
		case "Date", "Content-Length":
			continue
		case "Content-Type":
			if status == http.StatusNotModified {
				continue
			}
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	st.keys = keys
	if !resp.HasType || status == http.StatusNotModified {
		withoutContentType(w)
	}
	w.WriteHeader(status)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			w.AddHeader(k, v)
		}
	}
}

// withoutContentType drops a site's Content-Type from the defaults of w
// (rare: it copies them).
func withoutContentType(w *fastpath.ResponseWriter) {
	defs := w.DefaultHeaders()
	i := slices.IndexFunc(defs, func(kv [2]string) bool { return kv[0] == "Content-Type" })
	if i < 0 {
		return
	}
	w.SetDefaultHeaders(slices.Delete(slices.Clone(defs), i, i+1))
}

// ready reports whether more of the response is at hand: reading on
// would not wait for the responder.
func ready(hr *bufio.Reader, rr *responseReader) bool {
	return hr.Buffered() > 0 || rr.ready()
}

// copyBodyFast sends a body of unknown length: what has arrived whole
// when the script ends, up to a buffer's worth, with Content-Length; else
// chunked, each piece flushed to the client whenever no more of it has
// arrived (what php flush()es is sent at once).
func copyBodyFast(w *fastpath.ResponseWriter, hr *bufio.Reader, rr *responseReader) error {
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	k := 0
	for {
		n, err := hr.Read(buf[k:])
		k += n
		if err == io.EOF {
			if len(buf)-k >= 40 {
				// The line in the buffer's free tail: no allocation.
				b := append(buf[k:k], "Content-Length: "...)
				b = strconv.AppendInt(b, int64(k), 10)
				w.AddHeaderLines(append(b, "\r\n"...))
			} else {
				w.AddHeader("Content-Length", strconv.Itoa(k))
			}
			if _, werr := w.Write(buf[:k]); werr != nil {
				return writeError{werr}
			}
			return nil
		}
		if err != nil {
			return err
		}
		if k == len(buf) || !ready(hr, rr) {
			break
		}
	}
	w.AddHeader("Transfer-Encoding", "chunked")
	for {
		if k > 0 {
			if err := w.WriteChunk(buf[:k]); err != nil {
				return writeError{err}
			}
			k = 0
		}
		if !ready(hr, rr) {
			if err := w.Flush(); err != nil {
				return writeError{err}
			}
		}
		n, err := hr.Read(buf)
		k = n
		if err == io.EOF {
			if k > 0 {
				if err := w.WriteChunk(buf[:k]); err != nil {
					return writeError{err}
				}
			}
			if err := w.EndChunks(nil); err != nil {
				return writeError{err}
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errLength is a body that does not match the script's Content-Length.
var errLength = errors.New("body length differs from the script's Content-Length")

// copyDeclaredFast sends a body whose length the script declared, flushed
// whenever no more of it has arrived; a body of another length breaks
// the response (as net/http's path does, which closes the connection).
func copyDeclaredFast(w *fastpath.ResponseWriter, hr *bufio.Reader, rr *responseReader, declared int64) error {
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	var sent int64
	for {
		n, err := hr.Read(buf)
		if int64(n) > declared-sent {
			n = int(declared - sent)
			err = errLength
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return writeError{werr}
			}
			sent += int64(n)
			if err == nil && !ready(hr, rr) {
				if ferr := w.Flush(); ferr != nil {
					return writeError{ferr}
				}
			}
		}
		if err == io.EOF {
			if sent != declared {
				return writeError{errLength} // the script's error: not logged as a cut
			}
			return nil
		}
		if err != nil {
			if err == errLength {
				return writeError{err}
			}
			return err
		}
	}
}
