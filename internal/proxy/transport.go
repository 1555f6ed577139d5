package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// retryTransport is the http.RoundTripper given to httputil.ReverseProxy. It
// picks the upstream for each attempt, so ReverseProxy does its header
// handling and streaming once while a request that could not be sent is
// tried on another upstream.
type retryTransport struct {
	h *Handler
}

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := t.h
	ctx := req.Context()
	hasBody := req.Body != nil && req.Body != http.NoBody
	idem := idempotent(req.Method)
	var guard *bodyGuard
	if hasBody {
		guard = &bodyGuard{body: req.Body, remaining: req.ContentLength}
	}
	// rewrite left the client's Host in req.Host; each attempt sends the
	// one hostFor picks.
	clientHost := req.Host
	rs := h.newRetryState()
	tr, _ := ctx.Value(traceKey{}).(*upstreamTrace) // nil without an access log
	client := h.clientKey(req.RemoteAddr, req.Header["X-Forwarded-For"])
	u := h.pick(time.Now(), rs.tried, client)
	for attempt := 0; ; attempt++ {
		if u == nil {
			return nil, rs.giveUp()
		}
		sent := time.Now()
		rs.start(u, sent)
		// The first attempt sends ReverseProxy's own outgoing request (it
		// is private to this request); later ones send copies, since the
		// transport may still read an earlier attempt's request.
		out := req
		if attempt == 0 {
			req.URL.Scheme, req.URL.Host = u.scheme, u.host
		} else {
			o := *req
			url := *req.URL
			url.Scheme, url.Host = u.scheme, u.host
			o.URL = &url
			out = &o
		}
		out.Host = h.hostFor(clientHost, u)
		if hasBody {
			out.Body = guard.attempt(attempt)
			out.GetBody = nil
		}

		u.active.Add(1)
		resp, err := h.transport.RoundTrip(out)
		if err != nil {
			tr.attempt(u.addr, sent)
			u.active.Add(-1)
			if ctx.Err() != nil {
				// The client went away: not the upstream's fault.
				return nil, err
			}
			u.observe(0, 0)
			if hasBody {
				if berr := guard.readError(); berr != nil {
					// The client's body broke (too large, cut off):
					// not the upstream's fault either, and not retried.
					return nil, &clientBodyError{berr}
				}
			}
			h.pool.fail(u, err)
			// A body goes to the next attempt only if no read of it
			// started.
			if !rs.afterError(u, err, idem, time.Now()) || hasBody && !guard.release(attempt+1) {
				return nil, rs.lastErr
			}
			h.logRetry(u, err)
			u = h.pick(time.Now(), rs.tried, client)
			continue
		}

		now := time.Now()
		u.observe(resp.StatusCode, now.Sub(sent))
		if rs.afterStatus(resp.StatusCode, idem, hasBody, now) {
			if next := h.pick(now, rs.tried, client); next != nil {
				h.logRetry(u, fmt.Errorf("status %d", resp.StatusCode))
				drainClose(resp.Body)
				tr.attempt(u.addr, sent)
				u.active.Add(-1)
				rs.retriedStatus()
				u = next
				continue
			}
		}
		h.pool.ok(u)
		tr.answered(u.addr, sent)
		if resp.StatusCode == http.StatusSwitchingProtocols {
			if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
				resp.Body = &upgradedBody{ReadWriteCloser: rwc, u: u}
				return resp, nil
			}
		}
		resp.Body = &countedBody{ReadCloser: resp.Body, u: u}
		return resp, nil
	}
}

// drainClose reads a little of a discarded body so that its connection can
// be reused, then closes it.
func drainClose(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 64<<10)
	_ = b.Close()
}

// countedBody ends the upstream's in-flight count when ReverseProxy closes
// the response body.
type countedBody struct {
	io.ReadCloser
	u    *upstream
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.u.active.Add(-1) })
	return b.ReadCloser.Close()
}

// upgradedBody is countedBody for a switched protocol (WebSocket): it keeps
// the io.ReadWriteCloser that ReverseProxy needs.
type upgradedBody struct {
	io.ReadWriteCloser
	u    *upstream
	once sync.Once
}

func (b *upgradedBody) Close() error {
	b.once.Do(func() { b.u.active.Add(-1) })
	return b.ReadWriteCloser.Close()
}

// bodyGuard lets a request body be offered to a second attempt only if the
// first never started reading it. Each attempt reads through its own
// guardedBody; once the body is handed to a later attempt, reads by an
// earlier one (the transport's write loop may outlive a failed RoundTrip)
// fail instead of stealing bytes.
//
// It also ends a body of known length itself: the transport reads once
// more after Content-Length bytes to check for surplus, and if the upstream
// answered first, ReverseProxy may have closed the body by then; that read
// would fail and cost the upstream connection its keep-alive.
type bodyGuard struct {
	mu        sync.Mutex
	body      io.ReadCloser
	remaining int64 // bytes left of a known Content-Length; -1 unknown
	owner     int
	touched   bool
	err       error // a read error other than io.EOF
}

// readError returns the error reading the client's body, if any. It does
// not wait for a read in progress.
func (g *bodyGuard) readError() error {
	if !g.mu.TryLock() {
		return nil
	}
	defer g.mu.Unlock()
	return g.err
}

func (g *bodyGuard) attempt(n int) io.ReadCloser { return &guardedBody{g: g, n: n} }

// release hands the body to attempt next if no read has started; a read in
// progress holds the lock, so TryLock failing also means "touched".
func (g *bodyGuard) release(next int) bool {
	if !g.mu.TryLock() {
		return false
	}
	defer g.mu.Unlock()
	if g.touched {
		return false
	}
	g.owner = next
	return true
}

var errBodyAbandoned = errors.New("proxy: request body moved to another attempt")

type guardedBody struct {
	g *bodyGuard
	n int
}

func (b *guardedBody) Read(p []byte) (int, error) {
	g := b.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner != b.n {
		return 0, errBodyAbandoned
	}
	g.touched = true
	if g.remaining == 0 {
		return 0, io.EOF
	}
	if g.remaining > 0 && int64(len(p)) > g.remaining {
		p = p[:g.remaining]
	}
	n, err := g.body.Read(p)
	if err != nil && err != io.EOF {
		g.err = err
	}
	if g.remaining > 0 {
		g.remaining -= int64(n)
		if g.remaining == 0 && err == nil {
			err = io.EOF
		}
	}
	return n, err
}

// Close does nothing: the transport closes a request body when an attempt
// fails, but the body may still go to the next one. ReverseProxy closes the
// real body when the request ends.
func (b *guardedBody) Close() error { return nil }

// dialer returns the transport's DialContext: unix-socket upstreams are
// reached through their synthetic host name.
func dialer(timeout time.Duration, unix map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if path, ok := unix[addr]; ok {
			return d.DialContext(ctx, "unix", path)
		}
		return d.DialContext(ctx, network, addr)
	}
}
