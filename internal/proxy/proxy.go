// Package proxy is portico's reverse proxy and load balancer.
//
// A Handler forwards the requests of one route to a pool of upstreams
// (http:// or https:// URLs, or unix:/path.sock), balanced round robin
// (smooth weighted, as nginx), least_conn, ip_hash (weighted rendezvous
// hashing of the client address) or random (two weighted random choices,
// the less loaded wins).
//
// It is built on httputil.ReverseProxy with a Rewrite function, so
// hop-by-hop headers, including those a client names in Connection, are
// removed before portico adds X-Forwarded-For, X-Forwarded-Proto,
// X-Forwarded-Host and Via: a client cannot make portico strip what it adds.
// Incoming forwarding headers are kept (and appended to) only when the peer
// is a trusted proxy. A WebSocket upgrade is forwarded, an h2c upgrade
// never (h2c smuggling). Those rules are written once, in forward.go, and
// applied by both engines. The path is forwarded escaped as received (%2F,
// %3F and %23 stay encoded), and so is the query.
//
// Upstream health:
//   - passive (nginx's max_fails / fail_timeout): max_fails failed attempts
//     (connection refused or reset, timeout) within fail_timeout take an
//     upstream out of rotation for fail_timeout. If every upstream is out
//     by passive checks, they are tried anyway, as nginx does.
//   - active (health = {path, interval, timeout, expect}): one goroutine per
//     handler GETs path on each upstream every interval; a failing upstream
//     is out of rotation until a check passes again. Close stops it.
//
// State changes are logged: Warn "upstream down", Info "upstream up", with
// the upstream address and the reason.
//
// Retries: each attempt picks its upstream in a RoundTripper wrapped around
// one tuned http.Transport. A request that could not be sent (no connection
// could be made) is tried on another upstream whatever its method; an
// idempotent request (GET HEAD OPTIONS PUT DELETE TRACE) also after a
// transport error when its body, if any, was not read yet, and, when it has
// no body, after a 502/503/504 answer. Attempts are bounded by retries and
// retry_timeout. When no upstream is left: 502 (504 when the last attempt
// timed out). Those rules are retry.go's, for both engines.
//
// Handler is also a fastpath.Handler (fast.go): plain GET and HEAD requests
// from HTTP/1.1 clients to http:// or unix: upstreams skip net/http and
// ReverseProxy, with the same headers, balancing, health and retries.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"time"

	"portico/internal/accessinfo"
	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/errorpage"
)

// Options are the dependencies of a proxy handler.
type Options struct {
	Logger *slog.Logger
	// TrustedProxies: peers whose X-Forwarded-* headers are kept and appended to.
	TrustedProxies []netip.Prefix
	// DeferStart leaves the health checks to Start: New then starts
	// nothing, which is what `portico check` needs.
	DeferStart bool
}

// Host header modes.
const (
	hostClient = iota
	hostUpstream
	hostLiteral
)

// Handler proxies one route to its upstreams.
type Handler struct {
	rp        *httputil.ReverseProxy
	transport *http.Transport
	bal       *balancer
	pool      *pool
	log       *slog.Logger
	trusted   []netip.Prefix
	clients   *clientip.Resolver // the same trust, for ip_hash's client address

	hostMode     int
	hostLiteral  string
	retries      int
	retryTimeout time.Duration

	// fast is the fast path (fast.go); nil when the handler cannot
	// have one (an https upstream).
	fast *fastProxy

	health    *config.Health
	stop      context.CancelFunc
	done      chan struct{}
	startOnce sync.Once
	closeOnce sync.Once
}

var _ http.Handler = (*Handler)(nil)

// New validates cfg and builds the handler; health checks start here
// (or with Start, when Options.DeferStart is set).
//
// cfg comes with its defaults filled (config.Load does it; a config built
// in Go calls cfg.SetDefaults): New re-defaults nothing, and refuses a
// zero timeout or max_fails. cfg.Retries is taken as it is (SetDefaults
// makes 0 the number of upstreams less one); a negative value turns
// retries off.
func New(cfg config.Proxy, opts Options) (*Handler, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("proxy.upstreams: at least one upstream is required")
	}
	if len(cfg.Upstreams) > maxUpstreams {
		return nil, fmt.Errorf("proxy.upstreams: at most %d upstreams per route", maxUpstreams)
	}
	policy, ok := parseBalance(cfg.Balance)
	if !ok {
		return nil, fmt.Errorf("proxy.balance: unknown policy %q (want round_robin, least_conn, ip_hash or random)", cfg.Balance)
	}
	ups := make([]*upstream, len(cfg.Upstreams))
	unix := map[string]string{}
	weighted := false
	for i, s := range cfg.Upstreams {
		u, err := parseUpstream(i, s)
		if err != nil {
			return nil, err
		}
		if u.unixPath != "" {
			unix[u.host] = u.unixPath
		}
		if i > 0 && u.weight != ups[0].weight {
			weighted = true
		}
		ups[i] = u
	}
	if cfg.MaxFails < 0 {
		return nil, errors.New("proxy.max_fails: must not be negative")
	}
	if cfg.MaxFails == 0 {
		return nil, errors.New("proxy.max_fails: 0 (unset: config.Proxy.SetDefaults fills it)")
	}
	for _, d := range []struct {
		field string
		d     config.Duration
	}{{"fail_timeout", cfg.FailTimeout}, {"retry_timeout", cfg.RetryTimeout}, {"connect_timeout", cfg.ConnectTimeout}, {"read_timeout", cfg.ReadTimeout}} {
		if d.d <= 0 {
			return nil, fmt.Errorf("proxy.%s: must be positive (unset: config.Proxy.SetDefaults fills it)", d.field)
		}
	}
	h := &Handler{
		log:          log,
		trusted:      opts.TrustedProxies,
		clients:      clientip.New(opts.TrustedProxies),
		retries:      max(cfg.Retries, 0),
		retryTimeout: cfg.RetryTimeout.D(),
	}
	switch cfg.Host {
	case "", "client":
		h.hostMode = hostClient
	case "upstream":
		h.hostMode = hostUpstream
	default:
		if strings.ContainsAny(cfg.Host, " \t\r\n/") {
			return nil, fmt.Errorf("proxy.host: bad host %q (want \"client\", \"upstream\" or a host name)", cfg.Host)
		}
		h.hostMode, h.hostLiteral = hostLiteral, cfg.Host
	}
	if cfg.Health != nil {
		hc := *cfg.Health
		if hc.Path == "" || hc.Path[0] != '/' {
			return nil, fmt.Errorf("proxy.health.path: %q must start with /", hc.Path)
		}
		if hc.Expect != 0 && (hc.Expect < 100 || hc.Expect > 599) {
			return nil, fmt.Errorf("proxy.health.expect: bad status %d", hc.Expect)
		}
		if hc.Interval <= 0 || hc.Timeout <= 0 {
			return nil, errors.New("proxy.health: interval and timeout must be positive (unset: config.Proxy.SetDefaults fills them)")
		}
		h.health = &hc
	}

	h.pool = &pool{
		ups:         ups,
		maxFails:    cfg.MaxFails,
		failTimeout: cfg.FailTimeout.D(),
		log:         log,
	}
	h.bal = &balancer{policy: policy, ups: ups, weighted: weighted}
	// Every policy counts requests in flight (upstream.active): least_conn
	// and random pick by it, and the status page shows it.
	h.transport = &http.Transport{
		Proxy:                  nil, // never from the environment (httpoxy)
		DialContext:            dialer(cfg.ConnectTimeout.D(), unix),
		MaxIdleConns:           0, // no global cap; per host below
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  cfg.ReadTimeout.D(),
		ExpectContinueTimeout:  time.Second,
		TLSHandshakeTimeout:    cfg.ConnectTimeout.D(),
		DisableCompression:     true, // pass Content-Encoding through untouched
		ForceAttemptHTTP2:      false,
		MaxResponseHeaderBytes: 1 << 20,
		// Bodies are copied through 32 KiB pool buffers that bypass bufio;
		// these only need to hold headers. 256 idle connections cost 6 MiB.
		WriteBufferSize: 8 << 10,
		ReadBufferSize:  16 << 10,
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      retryTransport{h: h},
		BufferPool:     bufferPool{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   h.errorHandler,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelInfo),
		// FlushInterval 0: ReverseProxy already flushes every write for
		// text/event-stream and for responses of unknown length (streams),
		// and lets bodies of known length fill the buffer.
	}
	h.fast = newFastProxy(h, ups, cfg.ConnectTimeout.D(), cfg.ReadTimeout.D())
	if !opts.DeferStart {
		h.Start()
	}
	return h, nil
}

// Start starts the health checks, if any (once; Close stops them). New
// calls it unless Options.DeferStart is set.
func (h *Handler) Start() error {
	h.startOnce.Do(func() {
		if h.health != nil {
			ctx, cancel := context.WithCancel(context.Background())
			h.stop = cancel
			h.done = make(chan struct{})
			go h.healthLoop(ctx)
		}
	})
	return nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := accessinfo.Find(w)
	if rep == nil {
		h.rp.ServeHTTP(w, r)
		return
	}
	tr := &upstreamTrace{rep: rep}
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), traceKey{}, tr)))
	tr.finish()
}

// Close stops health checks and closes idle upstream connections.
func (h *Handler) Close(ctx context.Context) error {
	var err error
	h.closeOnce.Do(func() {
		if h.stop != nil {
			h.stop()
			select {
			case <-h.done:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		h.transport.CloseIdleConnections()
		if h.fast != nil {
			h.fast.close()
		}
	})
	return err
}

// pick chooses the upstream of the next attempt, at (a clock reading the
// caller has read already); when every upstream is out of rotation by
// passive checks only, it tries them anyway (as nginx).
func (h *Handler) pick(at time.Time, tried uint64, remoteAddr string) *upstream {
	now := at.UnixNano()
	if u := h.bal.pick(now, tried, remoteAddr, false); u != nil {
		return u
	}
	return h.bal.pick(now, tried, remoteAddr, true)
}

func (h *Handler) logRetry(u *upstream, err error) {
	if h.log.Enabled(context.Background(), slog.LevelInfo) {
		h.log.Info("proxy retry", "upstream", u.addr, "err", err)
	}
}

// trustedPeer reports whether the request's peer may set forwarding headers.
func (h *Handler) trustedPeer(r *http.Request) bool {
	return h.trustedAddr(r.RemoteAddr)
}

// trustedAddr reports whether a peer (a RemoteAddr) may set forwarding
// headers.
func (h *Handler) trustedAddr(remoteAddr string) bool {
	if len(h.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range h.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// rewrite runs after ReverseProxy's own hop-by-hop removal; it applies
// portico's rules (forward.go), the same ones the fast path applies, so
// what an upstream receives does not depend on ReverseProxy's list.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	hdr := out.Header

	// Forward the query exactly as received (ReverseProxy drops parameters
	// Go cannot parse); the path is already the escaped one (URL.RawPath).
	out.URL.RawQuery = in.URL.RawQuery

	var connBuf [maxConnTokens]string
	conn := connBuf[:0]
	for _, v := range in.Header["Connection"] {
		conn, _ = appendConnTokens(conn, v) // more than fit: ReverseProxy removed them
	}
	for k := range hdr {
		if hopByHop(k) || connectionNamed(conn, k) {
			delete(hdr, k)
		}
	}
	for _, v := range in.Header["Te"] {
		if teTrailers(v) {
			hdr["Te"] = teTrailersValue
			break
		}
	}
	// A WebSocket upgrade goes through (ReverseProxy tunnels the 101
	// answer); h2c never does.
	if up := upgradeFor(conn, in.Header.Get("Upgrade")); up != "" {
		hdr["Connection"] = connUpgrade
		hdr["Upgrade"] = []string{up}
	}

	fin := forwardIn[string]{
		peer:    in.RemoteAddr,
		trusted: h.trustedPeer(in),
		https:   in.TLS != nil,
		host:    in.Host,
		proto:   "1.1",
		xff:     in.Header["X-Forwarded-For"],
		xfp:     in.Header["X-Forwarded-Proto"],
		xfh:     in.Header["X-Forwarded-Host"],
		fwd:     in.Header["Forwarded"],
		via:     hdr["Via"],
	}
	switch {
	case in.ProtoMajor == 2:
		fin.proto = "2.0"
	case in.ProtoMajor == 1 && in.ProtoMinor == 0:
		fin.proto = "1.0"
	}
	fs := forwardFields(&fin)
	setFields(hdr, fs[:])
	// httpoxy: an upstream CGI or app may turn Proxy into HTTP_PROXY.
	delete(hdr, "Proxy")

	// The transport sets the Host of each attempt (hostFor) from this.
	out.Host = in.Host
}

var (
	teTrailersValue = []string{"trailers"}
	connUpgrade     = []string{"Upgrade"}
)

// hostFor is the Host sent to u for a request the client sent with host,
// by the route's host mode; both engines ask it.
func (h *Handler) hostFor(host string, u *upstream) string {
	switch h.hostMode {
	case hostUpstream:
		return u.hostHeader
	case hostLiteral:
		return h.hostLiteral
	}
	return host
}

// modifyResponse applies portico's hop-by-hop rule to the response (after
// ReverseProxy's) and appends portico to its Via (upstreams are spoken to
// in HTTP/1.1), as the fast path's relay does.
func modifyResponse(resp *http.Response) error {
	for k := range resp.Header {
		if hopByHop(k) && resp.StatusCode != http.StatusSwitchingProtocols {
			delete(resp.Header, k)
		}
	}
	setFields(resp.Header, []fwdField[string]{{name: "Via", prior: resp.Header["Via"], own: viaPortico("1.1"), join: true}})
	return nil
}

// errorHandler maps proxy failures to status codes (errorStatus, shared
// with the fast path); detail goes to the log.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	status := errorStatus(err, r.Context().Err() != nil)
	switch {
	case status == statusClientGone:
		w.WriteHeader(status)
		return
	case status < 500:
		// The client's fault: the server's body limit, or a cut upload.
		h.log.Info("proxy: client request body", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		w.Header().Set("Connection", "close")
		errorpage.Write(w, r, status)
		return
	}
	h.log.Warn("proxy error", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	errorpage.Write(w, r, status)
}

// bufferPool lends ReverseProxy 32 KiB copy buffers. It stores array
// pointers, so Put does not allocate.
type bufferPool struct{}

const bufSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufSize]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) == bufSize {
		buffers.Put((*[bufSize]byte)(b[:bufSize]))
	}
}
