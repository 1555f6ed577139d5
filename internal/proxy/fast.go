package proxy

// The fast path: *Handler as a fastpath.Handler. For the simple, hot case
// (a GET or HEAD without a body from an HTTP/1.1 client, to plain-HTTP or
// unix-socket upstreams) it speaks HTTP/1.1 to the upstreams itself, over
// its own keep-alive pools, instead of going through net/http's server,
// httputil.ReverseProxy and http.Transport. What the upstream receives and
// what the client gets back are what the net/http path (proxy.go,
// transport.go) produces for the same request; fast_test.go holds the two
// together. Balancing, passive and active health, and retries use the same
// balancer, pool and rules.
//
// Requests the fast path declines (before writing or sending anything):
// other methods or versions, bodies, Expect, Upgrade (the engine hands
// those off), paths whose escaping net/url would change, Accept:
// text/event-stream (long-lived streams stay with net/http, which notices
// a client going away), and handlers with an https upstream.
//
// Known differences from the net/http path, all on rare upstream or
// client behaviour: the upstream's Date is replaced by the engine's (as
// nginx does); after a 1xx interim response (103) the final response keeps
// the site's headers (ReverseProxy clears them along with the interim
// fields); a response head with obs-fold or control bytes is a 502 (Go's
// client accepts some of those); a gap of more than read_timeout inside a
// response body ends it, except in a text/event-stream (net/http waits
// for ever, or until the client goes away); a client that goes away while
// the upstream thinks is noticed within a second (clientPoll), not at
// once.

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"portico/internal/errorpage"
	"portico/internal/fastpath"
)

var _ fastpath.Handler = (*Handler)(nil)

// fastProxy is the fast path's side of a Handler: a connection pool per
// upstream.
type fastProxy struct {
	pools       []*connPool
	dialer      net.Dialer
	readTimeout time.Duration
}

// fastIdleConns and fastIdleTimeout match the transport's
// MaxIdleConnsPerHost and IdleConnTimeout.
const (
	fastIdleConns   = 256
	fastIdleTimeout = 90 * time.Second
)

// newFastProxy returns the fast path of a handler, or nil when it cannot
// have one (an https upstream, a host name that needs punycode).
func newFastProxy(h *Handler, ups []*upstream, connectTimeout, readTimeout time.Duration) *fastProxy {
	if h.hostMode == hostLiteral && !printableASCII(h.hostLiteral) {
		return nil
	}
	f := &fastProxy{
		dialer:      net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
		readTimeout: readTimeout,
	}
	for _, u := range ups {
		p := &connPool{maxIdle: fastIdleConns, idleTimeout: fastIdleTimeout}
		switch {
		case u.unixPath != "":
			p.network, p.addr = "unix", u.unixPath
		case u.scheme == "http":
			if !printableASCII(u.host) {
				return nil
			}
			p.network, p.addr = "tcp", u.host
			if strings.LastIndexByte(u.host, ':') <= strings.LastIndexByte(u.host, ']') {
				p.addr = u.host + ":80"
			}
		default:
			return nil
		}
		f.pools = append(f.pools, p)
	}
	return f
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return s != ""
}

func (f *fastProxy) close() {
	for _, p := range f.pools {
		p.closeIdle(true)
	}
}

// fastState is the per-request scratch of the fast path.
type fastState struct {
	hdr        []byte // request header lines sent upstream after Host
	resp       []byte // response header lines for the client
	acceptHTML bool   // the forwarded Accept asks for HTML (error pages)
	hasAccept  bool
	accept     string
}

var fastStates = sync.Pool{New: func() any {
	return &fastState{hdr: make([]byte, 0, 1024), resp: make([]byte, 0, 1024)}
}}

// ServeFast serves req on the fast path, or declines (false) before doing
// anything.
func (h *Handler) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if h.fast == nil || req.ProtoMinor != 1 || req.Host == "" || len(w.DefaultHeaders()) > 64 {
		return false
	}
	if strings.Contains(req.Accept, "text/event-stream") || !validEncodedPath(req.RawPath) {
		return false
	}
	raw := w.RawHeader()
	if raw == nil {
		return false
	}
	st := fastStates.Get().(*fastState)
	defer func() {
		st.accept = ""
		fastStates.Put(st)
	}()
	if !h.fastRequestHeaders(st, req, raw) {
		return false
	}
	h.fastServe(st, req, w)
	return true
}

// validEncodedPath reports whether url.URL.EscapedPath would give back p,
// the escaped path as received (url's validEncoded with encodePath): then
// the net/http path forwards it unchanged, and so may the fast path.
func validEncodedPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !pathByte[p[i]] {
			return false
		}
	}
	return true
}

var pathByte [256]bool

func init() {
	for c := '0'; c <= '9'; c++ {
		pathByte[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		pathByte[c] = true
		pathByte[c-32] = true
	}
	for _, c := range "-_.~$&+,/:;=@!'()*[]%" {
		pathByte[c] = true
	}
}

// fastServe runs the attempts of a request by the retry rules of
// retry.go (as retryTransport.RoundTrip, for a bodiless idempotent
// request), and answers the client.
func (h *Handler) fastServe(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter) {
	isHEAD := req.Method == "HEAD"
	const idem, hasBody = true, false // ServeFast takes bodiless GET and HEAD only
	rs := h.newRetryState()
	client := h.fastClientKey(req, w)
	// The first attempt starts with the request (the engine read the
	// clock as it arrived: a few microseconds ago); a retry reads it.
	sent := req.Start
	if sent.IsZero() {
		sent = time.Now()
	}
	u := h.pick(sent, rs.tried, client)
	for attempt := 0; ; attempt++ {
		if u == nil {
			h.fastError(st, req, w, rs.giveUp())
			return
		}
		if attempt > 0 {
			sent = w.Refresh()
		}
		rs.start(u, sent)
		u.active.Add(1)
		c, err := h.fastRoundTrip(st, req, w, u, sent)
		// The wait may have been long: Date and the client's write
		// deadlines count from now.
		done := w.Refresh()
		if err != nil {
			w.ReportUpstream(u.addr, done.Sub(sent))
			u.active.Add(-1)
			if err == errClientGone {
				w.WriteHeader(errorStatus(err, true)) // not the upstream's fault
				return
			}
			u.observe(0, 0)
			h.pool.fail(u, err)
			if !rs.afterError(u, err, idem, done) {
				h.fastError(st, req, w, rs.lastErr)
				return
			}
			h.logRetry(u, err)
			u = h.pick(done, rs.tried, client)
			continue
		}
		u.observe(c.head.status, done.Sub(sent))
		if rs.afterStatus(c.head.status, idem, hasBody, done) {
			if next := h.pick(done, rs.tried, client); next != nil {
				h.logRetry(u, fmt.Errorf("status %d", c.head.status))
				h.fastDrain(c, u, isHEAD)
				w.ReportUpstream(u.addr, done.Sub(sent))
				u.active.Add(-1)
				rs.retriedStatus()
				u = next
				continue
			}
		}
		h.pool.ok(u)
		h.fastRelay(st, req, w, c, u, isHEAD)
		if w.Recording() {
			w.ReportUpstream(u.addr, w.Done().Sub(sent))
		}
		u.active.Add(-1)
		return
	}
}

// fastRoundTrip sends the request to u and reads the final response head
// into c.head (its bytes are c.buf[c.r:c.r+c.head.n]). A reused
// connection the upstream had closed is replaced by another to the same
// upstream, as Go's transport does.
func (h *Handler) fastRoundTrip(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, u *upstream, now time.Time) (*upConn, error) {
	f := h.fast
	p := f.pools[u.idx]
	host := h.hostFor(req.Host, u)
	for try := 0; ; try++ {
		if try > 0 {
			now = time.Now()
		}
		c := p.get(now)
		if c == nil {
			var err error
			if c, err = p.dial(&f.dialer); err != nil {
				return nil, err
			}
		}
		b := append(c.out[:0], req.Method...)
		b = append(b, ' ')
		b = append(b, req.URI...)
		b = append(b, " HTTP/1.1\r\nHost: "...)
		b = append(b, host...)
		b = append(b, "\r\n"...)
		b = append(b, st.hdr...)
		b = append(b, "\r\n"...)
		c.out = b
		// The deadline wakes the wait for the head every poll to see
		// whether the client is still there; it moves only when it
		// gains more than 1/64 of that.
		poll := min(f.readTimeout, clientPoll)
		if d := now.Add(poll); d.Sub(c.deadline) > poll>>6 {
			_ = c.nc.SetDeadline(d)
			c.deadline = d
		}
		c.bodyTimeout = f.readTimeout
		var err error
		if c.reused && c.raw != nil {
			err = c.sendReused(b)
			if isTimeout(err) {
				err = nil // the head loop below looks at the client and waits on
			}
		} else {
			_, err = c.nc.Write(b)
		}
		if err == nil {
			err = c.readHead(w, &st.resp, now.Add(f.readTimeout), poll)
		}
		if err == nil {
			return c, nil
		}
		c.nc.Close()
		if err == errNotQuiet {
			continue // as an idle connection the upstream had closed, but not yet sent on
		}
		if c.reused && c.w == 0 && isClosedIdle(err) {
			p.dropIdleSince(c.idleAt)
			continue
		}
		return nil, err
	}
}

// fastError answers an attempt that failed as errorHandler does
// (errorStatus: 502, or 504 after a timeout), with the error page and the
// site's headers.
func (h *Handler) fastError(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, err error) {
	status := errorStatus(err, false)
	h.log.Warn("proxy error", "method", req.Method, "path", req.Path, "status", status, "err", err)
	ew := &errWriter{h: http.Header{}}
	for _, kv := range w.DefaultHeaders() {
		ew.h[kv[0]] = []string{kv[1]}
	}
	r := &http.Request{Method: req.Method, Header: http.Header{}}
	if st.hasAccept && st.acceptHTML {
		r.Header["Accept"] = []string{"text/html"}
	}
	errorpage.Write(ew, r, status)
	w.WriteHeader(ew.status)
	for k, vs := range ew.h {
		for _, v := range vs {
			w.AddHeader(k, v)
		}
	}
	if len(ew.body) > 0 {
		_, _ = w.Write(ew.body)
	}
}

// errWriter captures an error page.
type errWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (e *errWriter) Header() http.Header         { return e.h }
func (e *errWriter) WriteHeader(s int)           { e.status = s }
func (e *errWriter) Write(p []byte) (int, error) { e.body = append(e.body, p...); return len(p), nil }
