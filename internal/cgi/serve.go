package cgi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"

	"portico/internal/errorpage"
)

type ctxKey int

const redirectDepthKey ctxKey = 0

// ServeHTTP runs the script the request path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.isClosed.Load() {
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return
	}
	s, status := h.resolve(r)
	if status != 0 {
		errorpage.Write(w, r, status)
		return
	}

	// The body: none, streamed (length known), or chunked (spooled).
	var (
		body    io.Reader
		spooled *os.File
		clen    int64 = -1
	)
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		if r.Header.Get("Content-Length") != "" {
			clen = 0
		}
	case r.ContentLength >= 0:
		clen = r.ContentLength
		if clen > 0 {
			body = r.Body
		}
	default:
		if !h.spool {
			errorpage.Write(w, r, http.StatusLengthRequired)
			return
		}
		var err error
		spooled, clen, err = spool(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				errorpage.Write(w, r, http.StatusRequestEntityTooLarge)
			} else if r.Context().Err() == nil {
				h.log.Warn("cgi: reading chunked body", "script", s.name, "err", err)
				errorpage.Write(w, r, http.StatusBadRequest)
			}
			return
		}
		defer spooled.Close()
	}

	select {
	case h.sem <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return
	}
	redirect := func() *http.Request {
		defer func() { <-h.sem }() // also when run aborts the response
		return h.run(w, r, s, body, spooled, clen)
	}()
	if redirect != nil {
		h.redispatch(w, redirect)
	}
}

// spool copies a body of unknown length to an unlinked temporary file.
func spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "portico-cgi-body-*")
	if err != nil {
		return nil, 0, err
	}
	_ = os.Remove(f.Name())
	bufp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(f, onlyReader{body}, *bufp)
	copyBufs.Put(bufp)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n, nil
}

// enter registers a request with Close; false once Close has started.
func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.active.Add(1)
	return true
}

// run starts the script and relays its response. It returns a request to
// redispatch when the script answered with a local redirect.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, s *script, body io.Reader, spooled *os.File, clen int64) *http.Request {
	if !h.enter() {
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return nil
	}
	defer h.active.Done()

	p, err := h.start(r, s, body, spooled, clen)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, fs.ErrPermission) {
			status = http.StatusForbidden
		}
		if status == http.StatusForbidden && h.cred != nil {
			h.log.Error("cgi: cannot start script (scripts run as an unprivileged user: the script and its folders must be readable and executable by it)",
				"script", s.name, "uid", h.cred.Uid, "err", err)
		} else {
			h.log.Error("cgi: cannot start script", "script", s.name, "err", err)
		}
		errorpage.Write(w, r, status)
		return nil
	}

	br := readers.Get().(*bufio.Reader)
	br.Reset(p.stdout)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	resp, err := parseHeader(br, s.nph)
	if err != nil {
		p.requestStop(stopBadOutput)
		p.finish()
		h.headerFailed(w, r, p, s, err)
		return nil
	}

	if resp.location != "" && resp.status == 0 && !s.nph && isLocalRedirect(resp.location) {
		// RFC 3875 section 6.2.2: the server answers as if the client had
		// asked for the new path. The script's body is not wanted.
		p.closeStdout()
		p.finish()
		if p.reason.Load() != stopNone && p.reason.Load() != stopBadOutput {
			h.stoppedEarly(w, r, p, s)
			return nil
		}
		return h.redirectRequest(w, r, s, resp.location)
	}

	status := resp.status
	if status == 0 {
		status = http.StatusOK
		if resp.location != "" {
			status = http.StatusFound // RFC 3875 section 6.2.3
		}
	}
	dst := w.Header()
	for k, v := range resp.header {
		dst[k] = v
	}
	if !resp.hasType {
		dst["Content-Type"] = nil // no sniffing of what the script did not say
	}
	w.WriteHeader(status)

	var res bodyResult
	declared := declaredLength(resp.header)
	if !bodyAllowed(r.Method, status) {
		_, _ = io.Copy(io.Discard, br)
	} else if res = h.copyBody(w, br, p, declared); res.writeErr != nil {
		p.requestStop(stopGone)
		p.closeStdout()
	} else if res.excess > 0 {
		// The response is complete: the client has it now, whatever the
		// script does next. The rest is not wanted: the script gets EPIPE
		// (or SIGPIPE) if it writes more.
		_ = http.NewResponseController(w).Flush()
		p.closeStdout()
	}
	p.finish()
	if why := p.reason.Load(); why != stopNone {
		if why != stopGone && why != stopBadOutput {
			h.log.Error("cgi: script stopped while sending its body", "script", s.name, "reason", reasonText(why))
		}
		// The body is cut: tell the client by aborting the connection
		// rather than ending the response as if it were complete.
		panic(http.ErrAbortHandler)
	}
	if code := exitCode(p.waitErr); code != 0 && res.excess == 0 {
		h.log.Warn("cgi: script exited with an error after answering", "script", s.name, "exit", code, "status", exitText(p.waitErr))
	}
	switch {
	case res.excess > 0:
		h.log.Error("cgi: script wrote more body than its Content-Length; the excess was dropped and the connection closed",
			"script", s.name, "content_length", declared, "excess_at_least", res.excess)
		closeConnection(w, r)
	case declared >= 0 && bodyAllowed(r.Method, status) && res.written < declared:
		h.log.Error("cgi: script wrote less body than its Content-Length; the connection was closed",
			"script", s.name, "content_length", declared, "written", res.written)
		// The client must not wait for bytes that will never come.
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	return nil
}

// headerFailed answers when no valid header block came from the script.
func (h *Handler) headerFailed(w http.ResponseWriter, r *http.Request, p *proc, s *script, err error) {
	if why := p.reason.Load(); why != stopNone && why != stopBadOutput {
		h.stoppedEarly(w, r, p, s)
		return
	}
	code := exitCode(p.waitErr)
	if errors.Is(err, errIncomplete) && code != 0 {
		h.log.Error("cgi: script failed before answering", "script", s.name, "exit", code, "status", exitText(p.waitErr))
		errorpage.Write(w, r, http.StatusInternalServerError)
		return
	}
	h.log.Error("cgi: bad response from script", "script", s.name, "err", err, "exit", code, "status", exitText(p.waitErr))
	errorpage.Write(w, r, http.StatusBadGateway)
}

// stoppedEarly answers for a script stopped before its header block.
func (h *Handler) stoppedEarly(w http.ResponseWriter, r *http.Request, p *proc, s *script) {
	why := p.reason.Load()
	h.log.Warn("cgi: script stopped", "script", s.name, "reason", reasonText(why))
	switch why {
	case stopTimeout:
		errorpage.Write(w, r, http.StatusGatewayTimeout)
	case stopShutdown:
		errorpage.Write(w, r, http.StatusServiceUnavailable)
	case stopBodyLarge:
		errorpage.Write(w, r, http.StatusRequestEntityTooLarge)
	case stopBodyError:
		errorpage.Write(w, r, http.StatusBadRequest)
	case stopGone:
		// Nobody is listening.
	default:
		errorpage.Write(w, r, http.StatusBadGateway)
	}
}

func reasonText(why int32) string {
	switch why {
	case stopTimeout:
		return "timeout"
	case stopGone:
		return "client went away"
	case stopShutdown:
		return "shutdown"
	case stopBodyLarge:
		return "request body too large"
	case stopBodyError:
		return "request body read failed"
	case stopBadOutput:
		return "bad output"
	}
	return "none"
}

// redirectRequest builds the GET of a local redirect: the same client, Host
// and context, no body. It goes through the site's full routing
// (Options.Redispatch), never straight to a handler, so every check on the
// new path applies (Apache CVE-2024-38476).
func (h *Handler) redirectRequest(w http.ResponseWriter, r *http.Request, s *script, loc string) *http.Request {
	depth, _ := r.Context().Value(redirectDepthKey).(int)
	u, err := url.ParseRequestURI(loc)
	if h.redispatch == nil || err != nil || depth >= maxRedirects {
		h.log.Error("cgi: cannot follow local redirect", "script", s.name, "location", loc,
			"depth", depth, "err", err, "redispatch", h.redispatch != nil)
		errorpage.Write(w, r, http.StatusInternalServerError)
		return nil
	}
	nr := r.Clone(context.WithValue(r.Context(), redirectDepthKey, depth+1))
	nr.Method = http.MethodGet
	nr.URL = u
	nr.RequestURI = loc
	nr.Body = http.NoBody
	nr.GetBody = nil
	nr.ContentLength = 0
	nr.TransferEncoding = nil
	nr.Form, nr.PostForm, nr.MultipartForm = nil, nil, nil
	nr.Trailer = nil
	for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Expect"} {
		nr.Header.Del(k)
	}
	return nr
}
