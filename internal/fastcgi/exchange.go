package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"portico/internal/cgi"
	"portico/internal/errorpage"
)

// stdinChunk is the most request body sent in one FCGI_STDIN record;
// bodyBufs hold one record: header, content and padding.
const stdinChunk = 32 << 10

var (
	bodyBufs   = sync.Pool{New: func() any { b := make([]byte, headerLen+stdinChunk+8); return &b }}
	paramBufs  = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
	headReader = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
	copyBufs   = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// writerGrace is how long a finished response waits for the request body
// still being sent before the connection is given up (php-fpm reads and
// drops what its script did not read, so normally it finishes at once).
const writerGrace = time.Second

// requestBody returns the body to send as FCGI_STDIN and its length (-1:
// no body). A chunked body is spooled to an unlinked temporary file first:
// php needs CONTENT_LENGTH. status is non-zero when the request was
// answered (-1: nobody listens any more).
func (h *Handler) requestBody(r *http.Request, t target) (body io.Reader, clen int64, cleanup func(), status int) {
	cleanup = func() {}
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		if r.Header.Get("Content-Length") != "" {
			return nil, 0, cleanup, 0
		}
		return nil, -1, cleanup, 0
	case r.ContentLength >= 0:
		if r.ContentLength == 0 {
			return nil, 0, cleanup, 0
		}
		return r.Body, r.ContentLength, cleanup, 0
	}
	f, err := os.CreateTemp("", "portico-fastcgi-body-*")
	if err != nil {
		h.log.Error("fastcgi: spooling chunked body", "script", t.name, "err", err)
		return nil, 0, cleanup, http.StatusInternalServerError
	}
	_ = os.Remove(f.Name())
	bufp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(f, struct{ io.Reader }{r.Body}, *bufp)
	copyBufs.Put(bufp)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, 0, cleanup, http.StatusRequestEntityTooLarge
		case r.Context().Err() != nil:
			return nil, 0, cleanup, -1
		}
		h.log.Warn("fastcgi: reading chunked body", "script", t.name, "err", err)
		return nil, 0, cleanup, http.StatusBadRequest
	}
	return f, n, func() { f.Close() }, 0
}

// serve runs the script on a pooled connection and relays the response.
// A reused connection that fails before any byte of the answer (php-fpm
// dropped it while idle) is retried once on another, when the body can be
// sent again.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, t target, body io.Reader, clen int64) {
	spooled, _ := body.(*os.File)
	replayable := (body == nil || spooled != nil) &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions)
	for attempt := 0; ; attempt++ {
		c, err := h.pool.get(r.Context())
		if err != nil {
			h.connectFailed(w, r, t, err)
			return
		}
		retry := h.exchange(w, r, t, c, body, clen, replayable && c.reused && attempt == 0)
		if !retry {
			return
		}
		if spooled != nil {
			if _, err := spooled.Seek(0, io.SeekStart); err != nil {
				errorpage.Write(w, r, http.StatusBadGateway)
				return
			}
		}
	}
}

func (h *Handler) connectFailed(w http.ResponseWriter, r *http.Request, t target, err error) {
	status, retryAfter := h.connectFailure(t, err, r.Context().Err() != nil)
	writeErrorHTTP(w, r, status, retryAfter)
}

// connectFailure logs why a request got no connection to the responder
// and returns the status to answer (0: nobody listens) and whether with
// Retry-After.
func (h *Handler) connectFailure(t target, err error, clientGone bool) (status int, retryAfter bool) {
	switch {
	case clientGone:
		return 0, false
	case errors.Is(err, errNoSlot):
		h.log.Warn("fastcgi: all connections busy (max_conns)", "upstream", h.upstream, "script", t.name)
		return http.StatusServiceUnavailable, true
	case errors.Is(err, errPoolClosed):
		return http.StatusServiceUnavailable, false
	}
	h.log.Error("fastcgi: cannot reach the responder", "upstream", h.upstream, "script", t.name, "err", err)
	return http.StatusBadGateway, false
}

// writeErrorHTTP sends the error page of status on net/http, with Retry-After
// when asked; status 0 (nobody listens) sends nothing.
func writeErrorHTTP(w http.ResponseWriter, r *http.Request, status int, retryAfter bool) {
	if status == 0 {
		return
	}
	if retryAfter {
		w.Header().Set("Retry-After", "1")
	}
	errorpage.Write(w, r, status)
}

// exchange sends one request on c and relays its response, then hands c
// back to the pool (reused only when everything ended cleanly). It returns
// true, having answered nothing, when mayRetry and the connection failed
// before any answer.
func (h *Handler) exchange(w http.ResponseWriter, r *http.Request, t target, c *conn, body io.Reader, clen int64, mayRetry bool) (retry bool) {
	reusable := false
	defer func() { h.pool.release(c, reusable) }()

	// One write for the begin record, the parameters and, without a
	// body, the end of stdin: a GET costs one syscall each way.
	bp := paramBufs.Get().(*[]byte)
	params := h.appendParams((*bp)[:0], r, t, clen)
	if len(params) > maxParamsBytes {
		*bp = params[:0]
		paramBufs.Put(bp)
		h.log.Warn("fastcgi: request parameters too large", "script", t.name, "bytes", len(params))
		errorpage.Write(w, r, http.StatusRequestHeaderFieldsTooLarge)
		return false
	}
	op := paramBufs.Get().(*[]byte)
	out := appendBeginRequest((*op)[:0])
	out = appendStream(out, typeParams, params)
	*bp = params[:0]
	paramBufs.Put(bp)
	if body == nil {
		out = appendRecord(out, typeStdin, nil)
	}
	_, err := c.tc.write(out)
	*op = out[:0]
	paramBufs.Put(op)
	if err != nil {
		if mayRetry {
			return true
		}
		h.log.Error("fastcgi: sending request", "upstream", h.upstream, "script", t.name, "err", err)
		errorpage.Write(w, r, http.StatusBadGateway)
		return false
	}

	// The client going away abandons the connection: php-fpm sees it
	// closed and stops the script.
	stop := context.AfterFunc(r.Context(), c.tc.kill)
	defer stop()

	var stdinDone chan error
	if body != nil {
		stdinDone = make(chan error, 1)
		go func() {
			err := sendStdin(c.tc, body)
			if err != nil {
				// The body did not arrive whole (the client stalled or
				// its body broke a limit): php would wait for the rest
				// until read_timeout. Abandon the connection now.
				c.tc.kill()
			}
			stdinDone <- err
		}()
	}
	// waitStdin returns whether the body went out whole; the handler
	// never returns while the goroutine may still read r.Body.
	waitStdin := func() bool {
		if stdinDone == nil {
			return true
		}
		timer := time.NewTimer(writerGrace)
		defer timer.Stop()
		select {
		case err := <-stdinDone:
			stdinDone = nil
			return err == nil
		case <-timer.C:
			c.tc.kill()
			<-stdinDone
			stdinDone = nil
			return false
		}
	}
	defer waitStdin()

	rr := &responseReader{br: c.br, stderr: stderrLog{h, t.name}}
	hr := headReader.Get().(*bufio.Reader)
	hr.Reset(rr)
	defer func() {
		hr.Reset(nil)
		headReader.Put(hr)
	}()
	resp, err := cgi.ParseResponseHeader(hr)
	if err != nil {
		// Nothing at all came back on a reused connection: php-fpm had
		// dropped it. Safe to send again only what cannot have run.
		if mayRetry && !rr.got && r.Context().Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.tc.kill()
			waitStdin()
			return true
		}
		h.headerFailed(w, r, t, rr, err)
		return false
	}

	status := resp.Status
	if status == 0 {
		status = http.StatusOK
		if resp.Location != "" {
			// As nginx does for FastCGI: no local redirects, a 302.
			status = http.StatusFound
		}
	}
	dst := w.Header()
	for k, v := range resp.Header {
		dst[k] = v
	}
	if !resp.HasType {
		dst["Content-Type"] = nil // no sniffing of what the script did not say
	}
	w.WriteHeader(status)

	if r.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		_, err = io.Copy(io.Discard, hr)
	} else {
		err = h.copyBody(w, hr, rr)
	}
	if err != nil {
		var we writeError
		if !errors.As(err, &we) && r.Context().Err() == nil {
			h.log.Error("fastcgi: response cut", "upstream", h.upstream, "script", t.name, "err", err)
		}
		c.tc.kill()
		waitStdin()
		// The body is cut: abort the connection rather than end the
		// response as if it were complete.
		panic(http.ErrAbortHandler)
	}
	if rr.protoStatus != statusRequestComplete {
		h.log.Warn("fastcgi: request not completed", "script", t.name, "status", protoStatusText(rr.protoStatus))
	}
	reusable = waitStdin() && rr.ended && rr.protoStatus == statusRequestComplete
	return false
}

// writeError is a failed write to the client.
type writeError struct{ error }

// copyBody streams the response body to the client, flushing whenever no
// more of it has arrived: what php flush()es is sent at once, while bytes
// that arrive together go out in one write.
func (h *Handler) copyBody(w http.ResponseWriter, hr *bufio.Reader, rr *responseReader) error {
	rc := http.NewResponseController(w)
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	for {
		n, err := hr.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return writeError{werr}
			}
			if hr.Buffered() == 0 && !rr.ready() {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return writeError{ferr}
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// headerFailed answers when no valid header block came from php-fpm.
func (h *Handler) headerFailed(w http.ResponseWriter, r *http.Request, t target, rr *responseReader, err error) {
	clientGone := r.Context().Err() != nil
	if !clientGone && errors.Is(err, errCanceled) {
		// The request body failed (see exchange): the client's fault.
		h.log.Warn("fastcgi: request body not received whole", "script", t.name)
		errorpage.Write(w, r, http.StatusBadRequest)
		return
	}
	status, retryAfter := h.headerFailure(t, rr, err, clientGone)
	writeErrorHTTP(w, r, status, retryAfter)
}

// headerFailure logs why no valid header block came from php-fpm and
// returns the status to answer (0: nobody listens) and whether with
// Retry-After.
func (h *Handler) headerFailure(t target, rr *responseReader, err error, clientGone bool) (status int, retryAfter bool) {
	switch {
	case clientGone:
		return 0, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.log.Error("fastcgi: no answer within read_timeout", "upstream", h.upstream, "script", t.name)
		return http.StatusGatewayTimeout, false
	case rr.ended && rr.protoStatus == statusOverloaded:
		h.log.Error("fastcgi: responder overloaded", "upstream", h.upstream, "script", t.name)
		return http.StatusServiceUnavailable, true
	}
	h.log.Error("fastcgi: bad response", "upstream", h.upstream, "script", t.name, "err", err)
	return http.StatusBadGateway, false
}

// sendStdin streams body as FCGI_STDIN records, then the empty record that
// ends it.
func sendStdin(tc *timedConn, body io.Reader) error {
	bufp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bufp)
	buf := *bufp
	for {
		n, rerr := body.Read(buf[headerLen : headerLen+stdinChunk])
		if n > 0 {
			pad := -n & 7
			putHeader(buf, typeStdin, requestID, n, pad)
			clear(buf[headerLen+n : headerLen+n+pad])
			if _, err := tc.write(buf[:headerLen+n+pad]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	var end [headerLen]byte
	putHeader(end[:], typeStdin, requestID, 0, 0)
	_, err := tc.write(end[:])
	return err
}
