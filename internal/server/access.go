package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"portico/internal/auth"
	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/fastpath"
	"portico/internal/layer"
	"portico/internal/ratelimit"
)

// This file wires access control into the tree: the gates of sites and
// routes (allow/deny, rate_limit, basic_auth), forward_auth, and the
// listener wrapper that reads PROXY headers and limits connections per
// client address.

// accessCounters are the counters the gates and listeners keep. They
// belong to the Metrics (they outlive reloads), or to the tree when
// there are no metrics.
type accessCounters struct {
	auth                     auth.Counters
	limits                   ratelimit.Counters
	proxyRejects, connLimits prometheusCounter
}

// prometheusCounter is an atomic counter read by a CounterFunc.
type prometheusCounter struct{ n atomic.Int64 }

// siteAccess holds the gates set on a [[site]]: built once, so that
// every route without its own key shares them (one rate budget, one
// credential cache for the whole site).
type siteAccess struct {
	acl   *auth.ACL
	limit *ratelimit.Limit
	basic *auth.Basic
}

// counters returns the access counters of the tree's metrics.
func (t *Tree) counters() *accessCounters {
	if t.metrics != nil {
		return &t.metrics.access
	}
	if t.localCounters == nil {
		t.localCounters = &accessCounters{}
	}
	return t.localCounters
}

func (t *Tree) authOptions(lg *slog.Logger) auth.Options {
	return auth.Options{Logger: lg, Clients: t.clients, Counters: &t.counters().auth}
}

// buildGates builds the gates of a site (rc nil) or of a route (only the
// keys it sets itself).
func (t *Tree) buildGates(scope string, allow, deny []string, rl *config.RateLimit, ba *config.BasicAuth, lg *slog.Logger) (*siteAccess, error) {
	sa := &siteAccess{}
	var err error
	if sa.acl, err = auth.NewACL(allow, deny, t.authOptions(lg)); err != nil {
		return nil, err
	}
	if rl != nil {
		sa.limit, err = ratelimit.New(*rl, ratelimit.Options{Logger: lg, Clients: t.clients, Counters: &t.counters().limits, Scope: scope})
		if err != nil {
			return nil, fmt.Errorf("rate_limit: %w", err)
		}
		l := sa.limit
		t.closers = append(t.closers, func(context.Context) error { return l.Close() })
	}
	if ba != nil {
		if sa.basic, err = auth.NewBasic(*ba, t.authOptions(lg)); err != nil {
			return nil, err
		}
	}
	return sa, nil
}

// siteGates builds the gates set on the site itself.
func (t *Tree) siteGates(sc *config.Site, lg *slog.Logger) (*siteAccess, error) {
	sa, err := t.buildGates(sc.Name, sc.Allow, sc.Deny, sc.RateLimit, sc.BasicAuth, lg)
	if err != nil {
		return nil, fmt.Errorf("%s: site %q: %w", sc.Source, sc.Name, err)
	}
	return sa, nil
}

// accessLayers returns the gates of a route, in the order they run:
// allow/deny (cheapest, and an address kept out costs nothing more),
// rate_limit (before basic_auth, so a flood of guesses is cut before
// bcrypt), basic_auth. A route's own key replaces the site's.
func (t *Tree) accessLayers(sc *config.Site, rc *config.Route, site *siteAccess, lg *slog.Logger) ([]layer.Layer, error) {
	var allow, deny []string
	if rc.Allow != nil || rc.Deny != nil {
		allow, deny = rc.Allow, rc.Deny
	}
	own, err := t.buildGates(sc.Name+" "+rc.Path, allow, deny, rc.RateLimit, rc.BasicAuth, lg)
	if err != nil {
		return nil, err
	}
	acl, limit, basic := site.acl, site.limit, site.basic
	if rc.Allow != nil || rc.Deny != nil {
		acl = own.acl
	}
	if rc.RateLimit != nil {
		limit = own.limit
	}
	if rc.BasicAuth != nil {
		basic = own.basic
	}
	var ls []layer.Layer
	if acl != nil {
		ls = append(ls, acl)
	}
	if limit != nil {
		ls = append(ls, limit)
	}
	if basic != nil {
		ls = append(ls, basic)
	}
	return ls, nil
}

// withForwardAuth puts forward_auth (the route's, else the site's) in
// front of h. Such a route is served by net/http only.
func (t *Tree) withForwardAuth(sc *config.Site, rc *config.Route, h http.Handler, lg *slog.Logger) (http.Handler, error) {
	fa := rc.ForwardAuth
	if fa == nil {
		fa = sc.ForwardAuth
	}
	if fa == nil {
		return h, nil
	}
	f, err := auth.NewForward(*fa, h, t.authOptions(lg))
	if err != nil {
		return nil, err
	}
	t.closers = append(t.closers, f.Close)
	return f, nil
}

// accessListen wraps a listener in clientip.Listen: PROXY headers (when
// the live config says so for this listener) and max_conns_per_ip. Both
// are read from the live tree per connection, so a reload changes them
// without reopening the socket.
func (s *Server) accessListen(key string, ln net.Listener) net.Listener {
	live := func() *Tree { return s.tree.Load() }
	c := s.counters()
	return clientip.Listen(ln, clientip.ListenOptions{
		ProxyProtocol: func() bool { return live().proxyProtocol[key] },
		HeaderTimeout: live().cfg.Server.ReadHeaderTimeout.D(),
		Resolver:      func() *clientip.Resolver { return live().clients },
		MaxConnsPerIP: func() int { return live().cfg.Server.MaxConnsPerIP },
		OnReject: func(reason string, peer net.Addr) {
			switch reason {
			case "proxy_header":
				c.proxyRejects.n.Add(1)
				s.opts.Logger.Warn("PROXY header refused; connection closed", "peer", peer.String(), "listener", key)
			case "conn_limit":
				c.connLimits.n.Add(1)
			}
		},
	})
}

// counters returns the access counters of the server's metrics (or of
// the live tree when there are none).
func (s *Server) counters() *accessCounters {
	if s.opts.Metrics != nil {
		return &s.opts.Metrics.access
	}
	return s.tree.Load().counters()
}

// proxyProtocolListeners lists the listener keys of sites with
// proxy_protocol (config makes every site of a listener agree).
func proxyProtocolListeners(cfg *config.Config) map[string]bool {
	m := map[string]bool{}
	for i := range cfg.Sites {
		if cfg.Sites[i].ProxyProtocol {
			for _, l := range cfg.Sites[i].Listen {
				m[config.ListenerKey(l)] = true
			}
		}
	}
	return m
}

// registerAccessMetrics adds the access counters to the registry.
func (m *Metrics) registerAccessMetrics() {
	a := &m.access
	for _, c := range []struct {
		name, help string
		f          func() float64
	}{
		{"portico_auth_failures_total", "Basic auth attempts refused (wrong, unknown or malformed credentials).", func() float64 { return float64(a.auth.BasicFailures.Load()) }},
		{"portico_access_denied_total", "Requests refused by allow/deny lists (403).", func() float64 { return float64(a.auth.Denied.Load()) }},
		{"portico_forward_auth_denied_total", "Requests an auth server did not let through.", func() float64 { return float64(a.auth.ForwardDenied.Load()) }},
		{"portico_forward_auth_errors_total", "Requests answered 503 because the auth server could not be asked.", func() float64 { return float64(a.auth.ForwardErrors.Load()) }},
		{"portico_ratelimit_limited_total", "Requests answered 429 by a rate limit.", func() float64 { return float64(a.limits.Limited.Load()) }},
		{"portico_ratelimit_store_errors_total", "Rate-limit store (Redis) calls that failed; the requests passed (fail open).", func() float64 { return float64(a.limits.StoreErrors.Load()) }},
		{"portico_proxy_protocol_rejected_total", "Connections closed for a PROXY header from an untrusted or broken peer.", func() float64 { return float64(a.proxyRejects.n.Load()) }},
		{"portico_conn_limit_rejected_total", "Connections closed beyond max_conns_per_ip.", func() float64 { return float64(a.connLimits.n.Load()) }},
	} {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, c.f))
	}
}

// logAddr is the address the access log shows: the client as clientip
// decides it, or RemoteAddr itself (no allocation) when that is the peer.
func (t *Tree) logAddr(remoteAddr string, xff []string) string {
	if !t.clients.HasTrusted() {
		return remoteAddr
	}
	a, fromPeer := t.clients.Client(remoteAddr, xff)
	if fromPeer {
		return remoteAddr
	}
	return a.String()
}

// noteClient records, for the access log, the client address and the
// basic-auth user of a net/http request (before a gate consumes the
// Authorization field).
func (t *Tree) noteClient(r *http.Request, rec *recorder) {
	rec.remote = t.logAddr(r.RemoteAddr, r.Header["X-Forwarded-For"])
	rec.credential = r.Header["Authorization"]
	if len(r.Header["Authorization"]) > 0 && t.log != nil {
		rec.user, _, _ = r.BasicAuth()
	}
}

// fastClient is noteClient on the fast path.
func (t *Tree) fastClient(req *fastpath.Request, w *fastpath.ResponseWriter) (user, remote string) {
	if req.Authorization != "" && t.log != nil {
		user, _ = basicAuthUser(req.Authorization)
	}
	if !t.clients.HasTrusted() {
		return user, req.RemoteAddr
	}
	var buf [8]string
	return user, t.logAddr(req.RemoteAddr, w.RequestValues("X-Forwarded-For", buf[:0]))
}

// restoreCredential gives a CGI local redirect (a new request through
// the site's routing) the Authorization field the client sent, which a
// basic_auth gate took from the first request: the route it lands on
// checks it again. The recorder under w kept it.
func restoreCredential(w http.ResponseWriter, r *http.Request) {
	for w != nil {
		if rec, ok := w.(*recorder); ok {
			if rec.credential != nil && r.Header["Authorization"] == nil {
				r.Header["Authorization"] = rec.credential
			}
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}
