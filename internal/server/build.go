package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"portico/internal/cache"
	"portico/internal/cgi"
	"portico/internal/clientip"
	"portico/internal/compress"
	"portico/internal/config"
	"portico/internal/fastcgi"
	"portico/internal/layer"
	"portico/internal/proxy"
	"portico/internal/static"
	"portico/internal/wsgi"
)

// Tree is an immutable handler tree built from one config. A reload builds
// a new Tree and swaps one pointer; requests in flight finish on the old one,
// which is closed once they are done.
type Tree struct {
	cfg        *config.Config
	byListener map[string]*vhost // ListenerKey -> host router
	caches     []*cache.Handler
	cacheNames []string // site and route of each cache, for metrics
	closers    []func(context.Context) error
	starters   []starter // long-lived parts Provision built and Start runs
	log        *accessLog
	metrics    *Metrics
	inflight   atomic.Int64

	// clients decides client addresses (trusted_proxies); proxyProtocol
	// lists the listeners with proxy_protocol; access.go.
	clients       *clientip.Resolver
	proxyProtocol map[string]bool
	localCounters *accessCounters // when there are no metrics
}

// Caches lists the response caches of the tree, for the admin purge.
func (t *Tree) Caches() []*cache.Handler { return t.caches }

// Config returns the config the tree was built from.
func (t *Tree) Config() *config.Config { return t.cfg }

// Deps are what building a tree needs from outside.
type Deps struct {
	Logger  *slog.Logger
	Stdout  interface{ Write([]byte) (int, error) }
	Stderr  interface{ Write([]byte) (int, error) }
	Metrics *Metrics
}

// A starter is a part of a handler that Provision builds but does not
// run: worker processes, health checks. where names its route in errors.
type starter struct {
	where string
	start func() error
	check func() error // nil: nothing to test without starting
}

// Build provisions a tree for cfg and starts it: what `portico run` and
// a reload do. On error nothing is left running.
func Build(cfg *config.Config, deps Deps) (*Tree, error) {
	t, err := Provision(cfg, deps)
	if err != nil {
		return nil, err
	}
	if err := t.Start(); err != nil {
		t.Close(context.Background())
		return nil, err
	}
	return t, nil
}

// Provision turns a loaded config into a handler tree without starting
// anything long-lived (no process, no listener, no health check): every
// handler validates its section and is built. It is the one step that
// `portico check` and `portico run` share; run then calls Start, check
// calls Check. The tree must be closed either way. On error nothing is
// left behind.
func Provision(cfg *config.Config, deps Deps) (_ *Tree, err error) {
	t := &Tree{cfg: cfg, byListener: map[string]*vhost{}, metrics: deps.Metrics}
	defer func() {
		if err != nil {
			// Release whatever the handlers built so far hold (open
			// files, caches).
			t.Close(context.Background())
		}
	}()
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var trusted []netip.Prefix
	for _, s := range cfg.Server.TrustedProxies {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		trusted = append(trusted, p)
	}
	t.clients = clientip.New(trusted)
	t.proxyProtocol = proxyProtocolListeners(cfg)
	configFiles := configFiles(cfg)
	var errs []error
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		st, err := t.buildSite(sc, logger, trusted, configFiles)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if sc.TLS != nil && sc.TLS.Auto {
			st.autoTLS = true
		} else if sc.TLS != nil {
			c, err := tls.LoadX509KeyPair(sc.TLS.Cert, sc.TLS.Key)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: site %q: tls: %w", sc.Source, sc.Name, err))
				continue
			}
			st.cert = newSiteCert(c, sc.Name, logger, defaultOCSPPolicy())
			t.closers = append(t.closers, st.cert.Close)
			t.starters = append(t.starters, starter{where: fmt.Sprintf("%s: site %q: tls", sc.Source, sc.Name), start: st.cert.start})
		}
		for _, l := range sc.Listen {
			key := config.ListenerKey(l)
			v := t.byListener[key]
			if v == nil {
				v = &vhost{exact: map[string]*site{}}
				t.byListener[key] = v
			}
			v.add(sc.Hosts, st)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// Start runs what Provision built but did not start: worker pools, health
// checks. It stops at the first failure, leaving the caller to Close the
// tree (which stops what did start).
func (t *Tree) Start() error {
	for _, st := range t.starters {
		if err := st.start(); err != nil {
			return fmt.Errorf("%s: %w", st.where, err)
		}
	}
	return nil
}

// Check tests what Start would run without starting it: each WSGI app is
// imported once in one short-lived child (killed with its group, and with
// portico). It reports every failure.
func (t *Tree) Check() error {
	var errs []error
	for _, st := range t.starters {
		if st.check == nil {
			continue
		}
		if err := st.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.where, err))
		}
	}
	return errors.Join(errs...)
}

func (t *Tree) buildSite(sc *config.Site, logger *slog.Logger, trusted []netip.Prefix, configFiles []string) (*site, error) {
	st := newSite(sc.Name, nil, sc.Headers)
	routes := make([]*route, 0, len(sc.Routes))
	siteGates, err := t.siteGates(sc, logger.With("site", sc.Name))
	if err != nil {
		return nil, err
	}
	for j := range sc.Routes {
		rc := &sc.Routes[j]
		h, err := t.buildHandler(sc, rc, st, logger, trusted, configFiles)
		if err == nil {
			h, err = t.withForwardAuth(sc, rc, h, logger.With("site", sc.Name, "route", rc.Path))
		}
		var gates []layer.Layer
		if err == nil {
			gates, err = t.accessLayers(sc, rc, siteGates, logger.With("site", sc.Name, "route", rc.Path))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", routeWhere(sc, rc), err)
		}
		h = layer.Chain(h, append(t.routeLayers(sc, rc), gates...)...)
		routes = append(routes, &route{
			path:         rc.Path,
			bare:         strings.TrimSuffix(rc.Path, "/"),
			maxBody:      int64(rc.MaxBodySize),
			readTimeout:  t.cfg.Server.ReadTimeout.D(),
			handler:      h,
			metrics:      t.metrics.route(sc.Name, rc.Path),
			forwardsFast: rc.Proxy != nil && rc.Cache == nil && rc.Static == nil,
		})
	}
	*st = *newSite(sc.Name, routes, sc.Headers)
	rw, err := buildRewrites(sc.Rewrites)
	if err != nil {
		return nil, fmt.Errorf("%s: site %q: rewrite: %w", sc.Source, sc.Name, err)
	}
	st.rewrites = rw
	st.metrics = t.metrics.site(sc.Name)
	return st, nil
}

// routeWhere names a route in errors: "file:line: site "x" route "/p/"".
func routeWhere(sc *config.Site, rc *config.Route) string {
	return fmt.Sprintf("%s: site %q route %q", rc.Source, sc.Name, rc.Path)
}

// routeLayers are the route-level layers of rc, outermost first: the
// site's header rules, then the route's (so a route's set wins). They
// wrap the whole route handler (cache and strip_prefix included), so they
// see the request path the client sent (after the site's rewrites).
func (t *Tree) routeLayers(sc *config.Site, rc *config.Route) []layer.Layer {
	// Request rules only where a request goes on (an app, an upstream, a
	// script): a static or redirect route ignores them and so keeps the
	// fast path for every request.
	siteReq, routeReq := sc.RequestHeaders, rc.RequestHeaders
	if rc.Proxy == nil && rc.CGI == nil && rc.WSGI == nil && rc.FastCGI == nil {
		siteReq, routeReq = nil, nil
	}
	var ls []layer.Layer
	if hl := layer.NewHeaderLayer(sc.HeaderRules, siteReq, t.clients); hl != nil {
		ls = append(ls, hl)
	}
	if hl := layer.NewHeaderLayer(rc.Headers, routeReq, t.clients); hl != nil {
		ls = append(ls, hl)
	}
	return ls
}

func (t *Tree) buildHandler(sc *config.Site, rc *config.Route, st *site, logger *slog.Logger, trusted []netip.Prefix, configFiles []string) (http.Handler, error) {
	prefix := strings.TrimSuffix(rc.Path, "/")
	lg := logger.With("site", sc.Name, "route", rc.Path)
	comp, err := compressSettings(rc)
	if err != nil {
		return nil, err
	}
	// app is the route's application handler (proxy or wsgi), with the
	// prefix stripped inside and the cache outside, so cache keys and
	// purges use the URL the client asked for.
	var app http.Handler
	switch {
	case rc.Proxy != nil:
		p, err := proxy.New(*rc.Proxy, proxy.Options{Logger: lg, TrustedProxies: trusted, DeferStart: true})
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		t.closers = append(t.closers, p.Close)
		t.starters = append(t.starters, starter{where: routeWhere(sc, rc), start: p.Start})
		app = p
		if rc.StripPrefix && prefix != "" {
			app = stripHandler{prefix: prefix, next: p}
		}
	case rc.WSGI != nil:
		p, err := wsgi.Provision(*rc.WSGI, wsgi.Options{Logger: lg, Prefix: prefix, Clients: t.clients})
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, p.Close)
		t.starters = append(t.starters, starter{where: routeWhere(sc, rc), start: p.Start, check: p.Check})
		app = p
	}
	app = withCompression(comp, app)
	if app != nil && rc.Cache != nil {
		c, err := cache.New(*rc.Cache, app, cache.Options{Logger: lg, Name: sc.Name + " " + rc.Path})
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		t.closers = append(t.closers, c.Close)
		t.caches = append(t.caches, c)
		t.cacheNames = append(t.cacheNames, sc.Name+" "+rc.Path)
		app = c
		if comp != nil {
			app = compress.NewNormalize(comp, app)
		}
	}
	switch {
	case rc.Static != nil:
		var fallback http.Handler
		if rc.FilesFirst {
			fallback = app
		}
		sc := *rc.Static
		sc.Hide = append(append([]string(nil), sc.Hide...), insideRoot(sc.Root, configFiles)...)
		h, err := static.New(sc, static.Options{Logger: lg, Prefix: prefix, Fallback: fallback, Compress: comp})
		if err != nil {
			return nil, fmt.Errorf("static: %w", err)
		}
		t.closers = append(t.closers, h.Close)
		return h, nil
	case rc.CGI != nil:
		h, err := cgi.New(*rc.CGI, cgi.Options{Logger: lg, Prefix: prefix, Redispatch: st.redispatch, Clients: t.clients})
		if err != nil {
			return nil, fmt.Errorf("cgi: %w", err)
		}
		t.closers = append(t.closers, h.Close)
		return withCompression(comp, h), nil
	case rc.FastCGI != nil:
		h, err := t.buildFastCGI(rc, prefix, lg, configFiles, comp)
		if err != nil {
			return nil, err
		}
		return withCompressionFastFiles(comp, h), nil
	case app != nil:
		return app, nil
	case rc.Redirect != nil:
		return &redirectHandler{to: rc.Redirect.To, status: rc.Redirect.Status, prefix: prefix}, nil
	}
	return nil, errors.New("route has no handler")
}

// buildFastCGI builds a fastcgi route: the handler, with a static handler
// over the same root for the files that are not scripts (try_files $uri).
func (t *Tree) buildFastCGI(rc *config.Route, prefix string, lg *slog.Logger, configFiles []string, comp *compress.Settings) (http.Handler, error) {
	// Never served as files: the config files, and any cgi root inside
	// (a script's source), as for a static route.
	hide := insideRoot(rc.FastCGI.Root, configFiles)
	for _, s := range t.cfg.Sites {
		for _, r := range s.Routes {
			if r.CGI != nil {
				hide = append(hide, insideRoot(rc.FastCGI.Root, []string{r.CGI.Root})...)
			}
		}
	}
	files := config.Static{Root: rc.FastCGI.Root, Hide: hide}
	files.SetDefaults()
	fh, err := static.New(files, static.Options{Logger: lg, Prefix: prefix, Compress: comp})
	if err != nil {
		return nil, fmt.Errorf("fastcgi: static files: %w", err)
	}
	t.closers = append(t.closers, fh.Close)
	h, err := fastcgi.New(*rc.FastCGI, fastcgi.Options{Logger: lg, Prefix: prefix, Files: fh, Clients: t.clients})
	if err != nil {
		return nil, fmt.Errorf("fastcgi: %w", err)
	}
	t.closers = append(t.closers, h.Close)
	return h, nil
}

// Close releases everything the tree holds: running scripts, health
// checkers, caches, open files, the access log.
func (t *Tree) Close(ctx context.Context) error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		if err := t.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	t.closers = nil
	// t.log stays: a request still running (shutdown's deadline passed,
	// or a handler ignores its cancelled context) reads it when it ends;
	// a closed log drops its line.
	if err := t.log.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// drain waits until no request is in flight on the tree, or ctx ends.
func (t *Tree) drain(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for t.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// configFiles lists the config file and the files its includes name: a
// static root that contains them must never serve them (they may hold
// upstream addresses, paths and secrets).
func configFiles(cfg *config.Config) []string {
	if cfg.File == "" {
		return nil
	}
	files := []string{cfg.File}
	dir := filepath.Dir(cfg.File)
	for _, pattern := range cfg.Server.Include {
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	return files
}

// insideRoot returns the files that lie inside root.
func insideRoot(root string, files []string) []string {
	var out []string
	for _, f := range files {
		if rel, err := filepath.Rel(root, f); err == nil && filepath.IsLocal(rel) {
			out = append(out, f)
		}
	}
	return out
}
