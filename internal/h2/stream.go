package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"portico/internal/httpnum"
)

// stream is one request and its response. Fields below mu are guarded by
// the connection's mu.
type stream struct {
	c   *conn
	id  uint32
	req *http.Request
	rw  responseWriter

	cancel context.CancelFunc
	// fixedStatus, when set, is answered instead of running the handler
	// (431 for a header list over the limit).
	fixedStatus int

	sendWindow     int64
	recvWindow     int64
	recvCredit     int64
	declaredLength int64 // content-length, or -1
	bodyRead       int64 // DATA bytes received
	discarded      int64 // DATA bytes received after the answer
	body           []byte
	trailer        http.Header
	remoteDone     bool // END_STREAM received: no more body
	bodyClosed     bool // the handler closed the body or returned: DATA is dropped
	answered       bool // the handler returned; kept only for the rules
	reset          bool // reset by either side, or the connection ended
	readDeadline   time.Time
	writeDeadline  time.Time
	windowDeadline time.Time // a wait for flow-control window ends (Server.WriteTimeout)
	deadlineTimer  *time.Timer
	sawContinue    bool
	wantsContinue  bool
}

var (
	errStreamReset = errors.New("h2: stream reset")
	errTimeout     = timeoutError{}
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "h2: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// connectionHeaders may not appear in HTTP/2 (RFC 9113 8.2.2).
var connectionHeaders = map[string]bool{
	"connection":        true,
	"keep-alive":        true,
	"proxy-connection":  true,
	"transfer-encoding": true,
	"upgrade":           true,
}

// newRequest builds st's request from its header block. A malformed
// request is a stream error; a connection-specific field or an invalid
// content-length ends the connection (PROTOCOL_ERROR: RFC 9113 5.4.1
// allows it for any stream error, and a client that sends one talks
// HTTP/1 framing rules into HTTP/2). status is 431 when the header list
// was over the limit.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) (req *http.Request, status int, err error) {
	streamErr := http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	var method, scheme, authority, path string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		default: // :status, and :protocol (RFC 8441), which portico does not offer
			return nil, 0, streamErr
		}
	}
	if method == "CONNECT" {
		if scheme != "" || path != "" || authority == "" {
			return nil, 0, streamErr
		}
	} else if method == "" || scheme == "" || path == "" || path[0] != '/' && !(path == "*" && method == "OPTIONS") {
		return nil, 0, streamErr
	}
	if !httpguts.ValidHeaderFieldName(method) { // a token, as a field name is
		return nil, 0, streamErr
	}
	regular := f.RegularFields()
	header := make(http.Header, len(regular))
	// One backing array for the values, as net/textproto does: a field
	// seen once (nearly all) takes a one-element slice of it.
	values := make([]string, len(regular))
	var cookies []string
	for i, hf := range regular {
		if connectionHeaders[hf.Name] || hf.Name == "te" && hf.Value != "trailers" {
			return nil, 0, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if hf.Name == "cookie" {
			cookies = append(cookies, hf.Value)
			continue
		}
		k := http.CanonicalHeaderKey(hf.Name)
		if vs, ok := header[k]; ok {
			header[k] = append(vs, hf.Value)
			continue
		}
		values[i] = hf.Value
		header[k] = values[i : i+1 : i+1]
	}
	if len(cookies) > 0 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if cl := header["Content-Length"]; len(cl) > 0 {
		n, ok := parseContentLength(cl)
		if !ok {
			return nil, 0, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if st.remoteDone && n != 0 {
			return nil, 0, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		st.declaredLength = n
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	var u *url.URL
	if method == "CONNECT" {
		u = &url.URL{Host: authority}
		path = authority
	} else if path == "*" {
		u = &url.URL{Path: "*"}
	} else if u, err = url.ParseRequestURI(path); err != nil {
		return nil, 0, streamErr
	}
	var ctx context.Context
	ctx, st.cancel = context.WithCancel(c.ctx)
	r := http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       authority,
		RemoteAddr: c.remoteAddr,
		RequestURI: path,
		TLS:        c.tlsState,
	}
	if st.remoteDone {
		r.Body = http.NoBody
	} else {
		r.Body = streamBody{st}
		r.ContentLength = st.declaredLength
		if names := declaredTrailers(header); len(names) > 0 {
			r.Trailer = make(http.Header, len(names))
			for _, k := range names {
				r.Trailer[k] = nil
			}
		}
		st.wantsContinue = httpguts.HeaderValuesContainsToken(header["Expect"], "100-continue")
	}
	if f.Truncated {
		status = http.StatusRequestHeaderFieldsTooLarge
	}
	return r.WithContext(ctx), status, nil
}

// parseContentLength accepts repeated content-length values only when
// they agree (RFC 9110 8.6).
func parseContentLength(vs []string) (int64, bool) {
	var n int64 = -1
	for _, v := range vs {
		for _, part := range strings.Split(v, ",") {
			m, ok := httpnum.Digits(textproto.TrimString(part))
			if !ok || n >= 0 && m != n {
				return 0, false
			}
			n = m
		}
	}
	return n, n >= 0
}

// cancelLocked ends st for its handler: its context is cancelled, and
// its body reads and response writes fail.
func (st *stream) cancelLocked() {
	st.reset = true
	if st.cancel != nil {
		st.cancel()
	}
}

// run serves st on a worker goroutine.
func (st *stream) run() {
	c := st.c
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler && c.srv.Logger != nil {
				c.srv.Logger.Error("panic serving HTTP/2 request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
			c.mu.Lock()
			c.resetStreamLocked(st.id, http2.ErrCodeInternal)
			c.handlerDoneLocked(st)
			c.mu.Unlock()
		}
		st.cancel()
		st.stopDeadlineTimer()
	}()
	if st.fixedStatus != 0 {
		st.rw.WriteHeader(st.fixedStatus)
	} else {
		c.handler.ServeHTTP(&st.rw, st.req)
	}
	st.rw.finish()
	c.mu.Lock()
	c.handlerDoneLocked(st)
	c.mu.Unlock()
}

// streamBody is a request body: DATA frames as the read loop buffered
// them.
type streamBody struct{ st *stream }

func (b streamBody) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.wantsContinue && !st.sawContinue {
		st.sawContinue = true
		if !st.rw.sentHeader && !st.reset && !c.closed {
			st.rw.writeHeadersLocked(http.StatusContinue, http.Header{}, false)
			c.flushLocked()
		}
	}
	for len(st.body) == 0 {
		switch {
		case st.bodyClosed:
			return 0, http.ErrBodyReadAfterClose
		case st.remoteDone:
			if st.trailer != nil {
				for k, v := range st.trailer {
					if st.req.Trailer == nil {
						st.req.Trailer = http.Header{}
					}
					st.req.Trailer[k] = v
				}
				st.trailer = nil
			}
			return 0, io.EOF
		case st.reset || c.closed:
			return 0, errStreamReset
		case !st.readDeadline.IsZero() && !time.Now().Before(st.readDeadline):
			return 0, errTimeout
		case len(p) == 0:
			return 0, nil
		}
		c.cond.Wait()
	}
	n := copy(p, st.body)
	// Past what was read, not the rest copied down: a body read in small
	// pieces would copy all that is buffered per Read (a byte at a time,
	// 32 GiB for a 256 KiB window). Once read, the buffer goes: a stream
	// waiting for more keeps none (hundreds of streams each holding the
	// largest burst they took would be far beyond the connection window).
	st.body = st.body[n:]
	if len(st.body) == 0 {
		st.body = nil
	}
	c.creditLocked(st, int64(n))
	return n, nil
}

// Close drops the body: what is buffered and what still comes goes back
// to the connection's window at once, not to the stream's (the client is
// to stop sending what no one reads), rather than wait, unread, for the
// handler to return.
func (b streamBody) Close() error {
	st := b.st
	c := st.c
	c.mu.Lock()
	st.bodyClosed = true
	if n := int64(len(st.body)); n > 0 {
		st.body = nil
		c.creditLocked(nil, n)
	}
	c.cond.Broadcast() // a Read waiting on another goroutine ends
	c.mu.Unlock()
	return nil
}

// setDeadline sets a read or write deadline and wakes st's waits when
// it passes: now if it has.
func (st *stream) setDeadline(read bool, t time.Time) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if read {
		st.readDeadline = t
	} else {
		st.writeDeadline = t
	}
	if !t.IsZero() && !t.After(time.Now()) {
		c.cond.Broadcast()
	}
	st.armDeadlineLocked()
}

// armDeadlineLocked sets st's timer for the earliest deadline still to
// come. Only one to come: a timer set for one already passed fired at
// once and left the other deadline, later, with nothing to wake its
// waiter (a write waiting for a WINDOW_UPDATE waited past its deadline
// for good).
func (st *stream) armDeadlineLocked() {
	now := time.Now()
	var next time.Time
	for _, t := range [3]time.Time{st.readDeadline, st.writeDeadline, st.windowDeadline} {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if next.IsZero() {
		if st.deadlineTimer != nil {
			st.deadlineTimer.Stop()
		}
		return
	}
	if st.deadlineTimer == nil {
		st.deadlineTimer = time.AfterFunc(next.Sub(now), st.deadlinePassed)
		return
	}
	st.deadlineTimer.Reset(next.Sub(now))
}

// deadlinePassed wakes st's waits, and sets the timer for the other
// deadline if it is still to come.
func (st *stream) deadlinePassed() {
	c := st.c
	c.mu.Lock()
	c.cond.Broadcast()
	st.armDeadlineLocked()
	c.mu.Unlock()
}

// stopDeadlineTimer ends st's deadlines when its handler has returned:
// a timer firing meanwhile finds none to set itself for again.
func (st *stream) stopDeadlineTimer() {
	if st.deadlineTimer == nil {
		return // no deadline was ever set: nothing to lock for
	}
	c := st.c
	c.mu.Lock()
	st.readDeadline, st.writeDeadline, st.windowDeadline = time.Time{}, time.Time{}, time.Time{}
	st.deadlineTimer.Stop()
	c.mu.Unlock()
}
