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
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
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

// Request header kinds.
const (
	rqOther = iota
	rqDrop  // hop-by-hop, Host, Content-Length, Proxy: never forwarded
	rqTe
	rqXFF
	rqXFP
	rqXFH
	rqForwarded
	rqVia
	rqUserAgent
	rqAccept
)

func requestKind(name []byte) int {
	switch len(name) {
	case 2:
		if foldEq(name, "te") {
			return rqTe
		}
	case 3:
		if foldEq(name, "via") {
			return rqVia
		}
	case 4:
		if foldEq(name, "host") {
			return rqDrop
		}
	case 5:
		if foldEq(name, "proxy") {
			return rqDrop
		}
	case 6:
		if foldEq(name, "accept") {
			return rqAccept
		}
	case 7:
		if foldEq(name, "trailer") || foldEq(name, "upgrade") {
			return rqDrop
		}
	case 9:
		if foldEq(name, "forwarded") {
			return rqForwarded
		}
	case 10:
		if foldEq(name, "connection") || foldEq(name, "keep-alive") {
			return rqDrop
		}
		if foldEq(name, "user-agent") {
			return rqUserAgent
		}
	case 14:
		if foldEq(name, "content-length") {
			return rqDrop
		}
	case 15:
		if foldEq(name, "x-forwarded-for") {
			return rqXFF
		}
	case 16:
		if foldEq(name, "x-forwarded-host") {
			return rqXFH
		}
		if foldEq(name, "proxy-connection") {
			return rqDrop
		}
	case 17:
		if foldEq(name, "x-forwarded-proto") || foldEq(name, "transfer-encoding") {
			if name[0]|0x20 == 'x' {
				return rqXFP
			}
			return rqDrop
		}
	case 18:
		if foldEq(name, "proxy-authenticate") {
			return rqDrop
		}
	case 19:
		if foldEq(name, "proxy-authorization") {
			return rqDrop
		}
	}
	return rqOther
}

// maxVals bounds the repeated forwarding fields the fast path handles;
// more go to net/http.
const maxVals = 8

// fastRequestHeaders renders into st.hdr the header lines the net/http
// path would send upstream after Host: ReverseProxy's hop-by-hop removal
// (fields named in Connection too), then rewrite's forwarding headers and
// Via, and the transport's handling of User-Agent and Content-Length. It
// returns false for anything it does not handle exactly.
func (h *Handler) fastRequestHeaders(st *fastState, req *fastpath.Request, raw []byte) bool {
	var conn [16]string
	nconn := 0
	for cv := req.Connection; cv != ""; {
		t, rest, _ := strings.Cut(cv, ",")
		cv = rest
		t = strings.Trim(t, " \t")
		if t == "" {
			continue
		}
		if nconn == len(conn) {
			return false
		}
		conn[nconn] = t
		nconn++
	}
	named := func(name []byte) bool {
		for _, t := range conn[:nconn] {
			if fastpath.EqualFold(name, t) {
				return true
			}
		}
		return false
	}
	var xff, xfp, xfh, fwd, via [maxVals][]byte
	var nxff, nxfp, nxfh, nfwd, nvia int
	te := false
	st.acceptHTML, st.hasAccept = false, false
	b := st.hdr[:0]
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 1 || raw[i-1] != '\r' {
			return false
		}
		line := raw[:i-1]
		raw = raw[i+1:]
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			return false
		}
		name, val := line[:c], bytes.Trim(line[c+1:], " \t")
		kind := requestKind(name)
		switch kind {
		case rqDrop:
			continue
		case rqTe:
			if hasToken(val, "trailers") {
				te = true
			}
			continue
		case rqXFF, rqXFP, rqXFH, rqForwarded:
			// Read from the incoming request (unaffected by Connection);
			// ReverseProxy drops them all before rewrite sets them.
			var n *int
			var vals *[maxVals][]byte
			switch kind {
			case rqXFF:
				n, vals = &nxff, &xff
			case rqXFP:
				n, vals = &nxfp, &xfp
			case rqXFH:
				n, vals = &nxfh, &xfh
			default:
				n, vals = &nfwd, &fwd
			}
			if *n == maxVals {
				return false
			}
			vals[*n] = val
			*n++
			continue
		}
		if nconn > 0 && named(name) {
			continue
		}
		switch kind {
		case rqVia:
			if nvia == maxVals {
				return false
			}
			via[nvia] = val
			nvia++
			continue
		case rqUserAgent:
			if len(val) == 0 {
				continue // the transport sends no empty User-Agent
			}
		case rqAccept:
			st.hasAccept = true
			st.acceptHTML = bytes.Contains(val, []byte("text/html"))
		}
		b = appendCanonical(b, name)
		b = append(b, ": "...)
		b = append(b, val...)
		b = append(b, "\r\n"...)
	}
	ip := clientIP(req.RemoteAddr)
	if h.trustedAddr(req.RemoteAddr) {
		b = append(b, "X-Forwarded-For: "...)
		for _, v := range xff[:nxff] {
			b = append(b, v...)
			b = append(b, ", "...)
		}
		b = append(b, ip...)
		b = append(b, "\r\n"...)
		if nxfp > 0 {
			b = appendLines(b, "X-Forwarded-Proto: ", xfp[:nxfp])
		} else {
			b = append(b, "X-Forwarded-Proto: http\r\n"...)
		}
		if nxfh > 0 {
			b = appendLines(b, "X-Forwarded-Host: ", xfh[:nxfh])
		} else {
			b = append(b, "X-Forwarded-Host: "...)
			b = append(b, req.Host...)
			b = append(b, "\r\n"...)
		}
		b = appendLines(b, "Forwarded: ", fwd[:nfwd])
	} else {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, ip...)
		b = append(b, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
		b = append(b, req.Host...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Via: "...)
	for _, v := range via[:nvia] {
		b = append(b, v...)
		b = append(b, ", "...)
	}
	b = append(b, "1.1 portico\r\n"...)
	if te {
		b = append(b, "Te: trailers\r\n"...)
	}
	st.hdr = b
	return true
}

func appendLines(b []byte, prefix string, vals [][]byte) []byte {
	for _, v := range vals {
		b = append(b, prefix...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b
}

// hasToken reports whether a comma-separated list holds token
// (case-insensitively), as httpguts.HeaderValuesContainsToken.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		if foldEq(bytes.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}

// fastServe runs the attempts of a request, as retryTransport.RoundTrip
// does for a bodiless idempotent request, and answers the client.
func (h *Handler) fastServe(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter) {
	var (
		tried    uint64
		deadline time.Time
		lastErr  error
	)
	isHEAD := req.Method == "HEAD"
	attempts := h.retries + 1
	u := h.pick(tried, req.RemoteAddr)
	for attempt := 0; ; attempt++ {
		if u == nil {
			if lastErr == nil {
				lastErr = errNoUpstream
			}
			h.fastError(st, req, w, lastErr)
			return
		}
		tried |= 1 << uint(u.idx)
		if attempt == 0 && attempts > 1 {
			deadline = time.Now().Add(h.retryTimeout)
		}
		if h.track {
			u.active.Add(1)
		}
		c, err := h.fastRoundTrip(st, req, w, u)
		// The wait may have been long: Date and the client's write
		// deadlines count from now.
		w.Refresh()
		if err != nil {
			if h.track {
				u.active.Add(-1)
			}
			if err == errClientGone {
				w.WriteHeader(499) // nginx's code, as errorHandler
				return
			}
			h.pool.fail(u, err)
			lastErr = &upstreamError{addr: u.addr, err: err}
			if attempt+1 >= attempts || time.Now().After(deadline) {
				h.fastError(st, req, w, lastErr)
				return
			}
			h.logRetry(u, err)
			u = h.pick(tried, req.RemoteAddr)
			continue
		}
		if retryStatus(c.head.status) && attempt+1 < attempts && time.Now().Before(deadline) {
			if next := h.pick(tried, req.RemoteAddr); next != nil {
				h.logRetry(u, fmt.Errorf("status %d", c.head.status))
				h.fastDrain(c, u, isHEAD)
				if h.track {
					u.active.Add(-1)
				}
				lastErr = nil
				u = next
				continue
			}
		}
		h.pool.ok(u)
		h.fastRelay(st, req, w, c, u, isHEAD)
		if h.track {
			u.active.Add(-1)
		}
		return
	}
}

// fastRoundTrip sends the request to u and reads the final response head
// into c.head (its bytes are c.buf[c.r:c.r+c.head.n]). A reused
// connection the upstream had closed is replaced by another to the same
// upstream, as Go's transport does.
func (h *Handler) fastRoundTrip(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, u *upstream) (*upConn, error) {
	f := h.fast
	p := f.pools[u.idx]
	host := req.Host
	switch h.hostMode {
	case hostUpstream:
		host = u.hostHeader
	case hostLiteral:
		host = h.hostLiteral
	}
	for {
		now := time.Now()
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
		_, err := c.nc.Write(b)
		if err == nil {
			err = c.readHead(w, &st.resp, now.Add(f.readTimeout), poll)
		}
		if err == nil {
			return c, nil
		}
		c.nc.Close()
		if c.reused && c.w == 0 && isClosedIdle(err) {
			p.dropIdleSince(c.idleAt)
			continue
		}
		return nil, err
	}
}

// maxInterim bounds the 1xx responses before the final one (as Go's
// transport).
const maxInterim = 5

// readHead reads the final response head. 1xx interim responses other
// than 101 go to the client at once, as ReverseProxy's Got1xxResponse
// does: the site's headers and the interim fields (all of them but
// Content-Length and Transfer-Encoding, as net/http writes 1xx).
func (c *upConn) readHead(w *fastpath.ResponseWriter, scratch *[]byte, deadline time.Time, poll time.Duration) error {
	interim := 0
	for {
		if c.w > c.r {
			n, err := parseResponseHead(c.buf[c.r:c.w], &c.head)
			if err != nil {
				return err
			}
			if n > 0 {
				if s := c.head.status; s >= 100 && s < 200 && s != 101 {
					if interim++; interim > maxInterim {
						return errors.New("too many 1xx responses from upstream")
					}
					base := c.buf[c.r : c.r+n]
					o := headerOut{b: (*scratch)[:0], defs: w.DefaultHeaders()}
					for _, f := range c.head.fields {
						name := base[f.ns:f.ne]
						if foldEq(name, "content-length") || foldEq(name, "transfer-encoding") {
							continue
						}
						o.add(name, base[f.vs:f.ve])
					}
					o.rest()
					*scratch = o.b
					_ = w.WriteInterim(s, o.b) // a failed write shows later
					c.r += n
					continue
				}
				return nil
			}
		}
		if _, err := c.fill(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if now := time.Now(); now.Before(deadline) {
					if w.ClientGone() {
						return errClientGone
					}
					d := now.Add(poll)
					if d.After(deadline) {
						d = deadline
					}
					_ = c.nc.SetReadDeadline(d)
					c.deadline = time.Time{}
					continue
				}
			}
			if err == io.EOF && c.w > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
}

// clientPoll is how often a wait for an upstream's response head looks
// whether the client is still there.
const clientPoll = time.Second

// errClientGone: the client closed its connection while the upstream
// was thinking. As on the net/http path (a cancelled context), the
// upstream request is abandoned, the upstream is not blamed, and the
// access log says 499.
var errClientGone = errors.New("client went away")

// Body framings.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyEOF
)

// fastDrain discards the body of a response that is retried elsewhere,
// as drainClose: up to 64 KiB is read so the connection can be reused.
func (h *Handler) fastDrain(c *upConn, u *upstream, isHEAD bool) {
	hd := &c.head
	c.r += hd.n
	noBody := isHEAD || hd.status == 204 || hd.status == 304
	if !hd.close && !hd.chunked && (noBody || hd.clen >= 0 && hd.clen <= 64<<10) {
		remaining := int64(0)
		if !noBody {
			remaining = hd.clen
		}
		for remaining > 0 {
			if c.r == c.w {
				if err := c.fillBody(); err != nil {
					c.nc.Close()
					return
				}
			}
			k := min(int64(c.w-c.r), remaining)
			c.r += int(k)
			remaining -= k
		}
		if c.r == c.w {
			h.fast.pools[u.idx].put(c, time.Now())
			return
		}
	}
	c.nc.Close()
}

// Response header kinds that are not copied as they are.
func responseSkip(name []byte) bool {
	switch len(name) {
	case 2:
		return foldEq(name, "te")
	case 3:
		return foldEq(name, "via")
	case 4:
		return foldEq(name, "date")
	case 7:
		return foldEq(name, "trailer") || foldEq(name, "upgrade")
	case 10:
		return foldEq(name, "connection") || foldEq(name, "keep-alive")
	case 14:
		return foldEq(name, "content-length")
	case 16:
		return foldEq(name, "proxy-connection")
	case 17:
		return foldEq(name, "transfer-encoding")
	case 18:
		return foldEq(name, "proxy-authenticate")
	case 19:
		return foldEq(name, "proxy-authorization")
	}
	return false
}

// headerOut renders response header lines, putting a site default header
// (SetDefaultHeaders) before the upstream's field of the same name, as
// the net/http path does (the site's value is set first, ReverseProxy
// adds the upstream's).
type headerOut struct {
	b    []byte
	defs [][2]string
	used uint64
}

func (o *headerOut) add(name, val []byte) {
	for i, kv := range o.defs {
		if o.used&(1<<uint(i)) == 0 && fastpath.EqualFold(name, kv[0]) {
			o.used |= 1 << uint(i)
			o.b = append(o.b, kv[0]...)
			o.b = append(o.b, ": "...)
			o.b = append(o.b, kv[1]...)
			o.b = append(o.b, "\r\n"...)
		}
	}
	o.b = appendCanonical(o.b, name)
	o.b = append(o.b, ": "...)
	o.b = append(o.b, val...)
	o.b = append(o.b, "\r\n"...)
}

// rest adds the default headers no field has brought in yet.
func (o *headerOut) rest() {
	for i, kv := range o.defs {
		if o.used&(1<<uint(i)) == 0 {
			o.used |= 1 << uint(i)
			o.b = append(o.b, kv[0]...)
			o.b = append(o.b, ": "...)
			o.b = append(o.b, kv[1]...)
			o.b = append(o.b, "\r\n"...)
		}
	}
}

// fastRelay answers the client with the upstream's response, as
// ReverseProxy and net/http's server would.
func (h *Handler) fastRelay(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, c *upConn, u *upstream, isHEAD bool) {
	hd := &c.head
	status := hd.status
	if status == 101 {
		// Switching protocols that were not asked for: ReverseProxy's
		// upgrade handling fails the same way.
		c.nc.Close()
		h.fastError(st, req, w, fmt.Errorf("backend tried to switch protocol %q when %q was requested", "", ""))
		return
	}
	base := c.buf[c.r : c.r+hd.n]
	named := func(name []byte) bool {
		for _, t := range hd.conn {
			if foldEqBytes(name, base[t.ns:t.ne]) {
				return true
			}
		}
		return false
	}
	bodyAllowed := status >= 200 && status != 204 && status != 304
	mode := bodyNone
	switch {
	case isHEAD || !bodyAllowed:
	case hd.chunked:
		mode = bodyChunked
	case hd.clen >= 0:
		mode = bodyLength
	default:
		mode = bodyEOF
	}
	o := headerOut{b: st.resp[:0], defs: w.DefaultHeaders()}
	hasType, hasCE, clOut, eventStream := false, false, false, false
	nvia := 0
	for _, f := range hd.fields {
		name, val := base[f.ns:f.ne], base[f.vs:f.ve]
		if len(hd.conn) > 0 && named(name) {
			continue
		}
		if responseSkip(name) {
			switch {
			case len(name) == 3: // Via
				nvia++
			case len(name) == 14: // Content-Length
				clOut = hd.clen >= 0 && bodyAllowed
			}
			continue
		}
		if len(name) == 12 && foldEq(name, "content-type") {
			if status == 304 {
				continue
			}
			hasType = true
			eventStream = bytes.HasPrefix(val, []byte("text/event-stream"))
		} else if len(name) == 16 && foldEq(name, "content-encoding") && len(val) > 0 {
			hasCE = true
		}
		o.add(name, val)
	}
	for _, kv := range o.defs {
		// A site's Content-Type or Content-Encoding is in the header
		// before ReverseProxy's copy, so net/http does not sniff.
		switch {
		case strings.EqualFold(kv[0], "Content-Type"):
			hasType = true
		case strings.EqualFold(kv[0], "Content-Encoding") && kv[1] != "":
			hasCE = true
		}
	}
	if clOut {
		var nb [20]byte
		o.add([]byte("Content-Length"), strconv.AppendInt(nb[:0], hd.clen, 10))
	}
	// Via: the upstream's, then portico (modifyResponse).
	{
		v := make([]byte, 0, 64)
		if nvia > 0 {
			for _, f := range hd.fields {
				if name := base[f.ns:f.ne]; len(name) == 3 && foldEq(name, "via") && !named(name) {
					v = append(v, base[f.vs:f.ve]...)
					v = append(v, ", "...)
				}
			}
		}
		v = append(v, "1.1 portico"...)
		o.add([]byte("Via"), v)
	}
	// Announced trailers (ReverseProxy rebuilds Trailer from them).
	if hd.chunked && hd.hasTrail && !named([]byte("trailer")) {
		var t []byte
		for _, f := range hd.fields {
			if name := base[f.ns:f.ne]; len(name) == 7 && foldEq(name, "trailer") {
				for _, k := range bytes.Split(base[f.vs:f.ve], []byte(",")) {
					if k = bytes.Trim(k, " \t"); len(k) > 0 {
						if len(t) > 0 {
							t = append(t, ", "...)
						}
						t = appendCanonical(t, k)
					}
				}
			}
		}
		if len(t) > 0 {
			o.add([]byte("Trailer"), t)
		}
	}
	st.resp = o.b
	reuse := !hd.close && mode != bodyEOF
	c.client = w
	defer func() { c.client = nil }()
	if eventStream && (mode == bodyChunked || mode == bodyEOF) {
		// A stream may be quiet for long: as on the net/http path, no
		// read timeout inside its body.
		c.bodyTimeout = 0
	}
	c.r += hd.n

	// Sniff a Content-Type as net/http would, from the body's start.
	sniff := ""
	// Only for a body of known length: for others ReverseProxy flushes the
	// header before the first body byte, and net/http sniffs nothing.
	if mode == bodyLength && !hasType && !hasCE {
		need := int(min(hd.clen, 512))
		var err error
		for err == nil && c.w-c.r < need {
			err = c.fillBody()
		}
		if err != nil {
			// Nothing was sent yet: net/http would abort the response
			// (ErrAbortHandler) and close the client's connection.
			c.nc.Close()
			w.Abort()
			return
		}
		if n := min(c.w-c.r, need, 512); n > 0 {
			sniff = http.DetectContentType(c.buf[c.r : c.r+n])
		}
	}

	w.WriteHeader(status)
	w.AddHeaderLines(st.resp)
	if sniff != "" {
		w.AddHeader("Content-Type", sniff)
	}
	chunkOut := mode != bodyNone && !clOut
	if chunkOut {
		w.AddHeader("Transfer-Encoding", "chunked")
	}
	var err error
	switch mode {
	case bodyNone:
		// nothing
	case bodyLength:
		err = h.copyLength(c, w, hd.clen, chunkOut)
	case bodyChunked:
		err = h.copyChunked(c, w)
	case bodyEOF:
		err = h.copyEOF(c, w)
	}
	if err != nil {
		c.nc.Close()
		w.Abort()
		return
	}
	if chunkOut {
		if mode != bodyChunked {
			_ = w.EndChunks(nil)
		}
	}
	if reuse && c.r == c.w {
		h.fast.pools[u.idx].put(c, time.Now())
	} else {
		c.nc.Close()
	}
}

// errClientWrite marks a failed write to the client.
var errClientWrite = errors.New("client write failed")

// copyLength relays a body of known length.
func (h *Handler) copyLength(c *upConn, w *fastpath.ResponseWriter, n int64, chunkOut bool) error {
	for n > 0 {
		if c.r == c.w {
			// Before waiting for the upstream, what we have goes out
			// (and the client's write deadline moves with progress).
			if w.Flush() != nil {
				return errClientWrite
			}
			if err := c.fillBody(); err != nil {
				return err
			}
		}
		k := int(min(int64(c.w-c.r), n))
		var err error
		if chunkOut {
			err = w.WriteChunk(c.buf[c.r : c.r+k])
		} else {
			_, err = w.Write(c.buf[c.r : c.r+k])
		}
		if err != nil {
			return errClientWrite
		}
		c.r += k
		n -= int64(k)
	}
	return nil
}

// copyEOF relays a body that ends when the upstream closes, chunked.
func (h *Handler) copyEOF(c *upConn, w *fastpath.ResponseWriter) error {
	for {
		if c.r < c.w {
			if w.WriteChunk(c.buf[c.r:c.w]) != nil {
				return errClientWrite
			}
			c.r = c.w
		}
		if w.Flush() != nil {
			return errClientWrite
		}
		if err := c.fillBody(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

var errBadChunk = errors.New("malformed chunked encoding from upstream")

// maxChunkLine bounds a chunk-size line (as Go's chunked reader).
const maxChunkLine = 4096

// chunkSize reads a chunk-size line and returns the size (extensions are
// dropped, as Go's chunked reader does).
func (c *upConn) chunkSize() (int64, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.r:c.w], '\n'); i >= 0 {
			line := c.buf[c.r : c.r+i]
			c.r += i + 1
			line = bytes.TrimRight(line, " \t\r")
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = bytes.TrimRight(line[:j], " \t")
			}
			if len(line) == 0 || len(line) > 16 {
				return 0, errBadChunk
			}
			var n uint64
			for _, b := range line {
				switch {
				case '0' <= b && b <= '9':
					b -= '0'
				case 'a' <= b && b <= 'f':
					b -= 'a' - 10
				case 'A' <= b && b <= 'F':
					b -= 'A' - 10
				default:
					return 0, errBadChunk
				}
				n = n<<4 | uint64(b)
			}
			if n > 1<<62 {
				return 0, errBadChunk
			}
			return int64(n), nil
		}
		if c.w-c.r > maxChunkLine {
			return 0, errBadChunk
		}
		if err := c.fillBody(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// need makes at least n bytes readable.
func (c *upConn) need(n int) error {
	for c.w-c.r < n {
		if err := c.fillBody(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// copyChunked relays a chunked body, re-framed, with its trailer fields.
func (h *Handler) copyChunked(c *upConn, w *fastpath.ResponseWriter) error {
	for {
		if c.r == c.w {
			if w.Flush() != nil {
				return errClientWrite
			}
		}
		left, err := c.chunkSize()
		if err != nil {
			return err
		}
		if left == 0 {
			break
		}
		for left > 0 {
			if c.r == c.w {
				if w.Flush() != nil {
					return errClientWrite
				}
				if err := c.need(1); err != nil {
					return err
				}
			}
			k := int(min(int64(c.w-c.r), left))
			if w.WriteChunk(c.buf[c.r:c.r+k]) != nil {
				return errClientWrite
			}
			c.r += k
			left -= int64(k)
		}
		if err := c.need(2); err != nil {
			return err
		}
		if c.buf[c.r] != '\r' || c.buf[c.r+1] != '\n' {
			return errBadChunk
		}
		c.r += 2
	}
	// Trailer section: field lines, then an empty line.
	var t []byte
	for {
		var i int
		for {
			if i = bytes.IndexByte(c.buf[c.r:c.w], '\n'); i >= 0 {
				break
			}
			if c.w-c.r > maxHeadBytes {
				return errBadChunk
			}
			if err := c.fillBody(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		line := c.buf[c.r : c.r+i]
		c.r += i + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			break
		}
		k := bytes.IndexByte(line, ':')
		if k <= 0 {
			return errBadChunk
		}
		name, val := line[:k], bytes.Trim(line[k+1:], " \t")
		for _, b := range name {
			if !tokenByte[b] {
				return errBadChunk
			}
		}
		for _, b := range val {
			if b < ' ' && b != '\t' || b == 0x7f {
				return errBadChunk
			}
		}
		t = appendCanonical(t, name)
		t = append(t, ": "...)
		t = append(t, val...)
		t = append(t, "\r\n"...)
	}
	if w.EndChunks(t) != nil {
		return errClientWrite
	}
	return nil
}

// fastError answers an attempt that failed as errorHandler does: 502, or
// 504 after a timeout, with the error page and the site's headers.
func (h *Handler) fastError(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, err error) {
	status := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		status = http.StatusGatewayTimeout
	}
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
