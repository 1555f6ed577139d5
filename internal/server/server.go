// Package server runs portico: listeners, TLS, virtual hosts, route
// dispatch, limits, access logging, graceful reload and shutdown.
//
// A request's way: listener -> Server.entry (framing, recovery, logging)
// -> vhost (site by Host) -> site (route by longest prefix) -> handler.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"

	"portico/internal/config"
	"portico/internal/errorpage"
	"portico/internal/reaper"
	"portico/internal/tlsauto"
)

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Announce logs the startup lines ("portico: serving URL (site NAME)")
	// in the format of Logger but to stdout, where scripts and tests read
	// them. Default: a text logger on Stdout.
	Announce *slog.Logger
	Stdout   io.Writer // where a stdout access log goes (and Announce by default)
	Stderr   io.Writer
	Metrics  *Metrics
}

// Server owns the listeners and the live handler tree.
type Server struct {
	opts Options
	tree atomic.Pointer[Tree]

	mu        sync.Mutex
	listeners map[string]*listener
	closing   bool
	wg        sync.WaitGroup
	retired   sync.WaitGroup
	reaper    *reaper.Reaper // reaps orphans adopted from scripts and workers

	acme    atomic.Pointer[tlsauto.Manager] // nil unless a site has tls = "auto" (tls.go)
	started time.Time
	reloads reloadLog // for the status page (status.go)
}

type listener struct {
	key  string // config.ListenerKey
	addr string // as configured
	tls  bool
	ln   net.Listener
	srv  *http.Server
	h3   *http3.Server  // HTTP/3 beside a TLS listener (http3.go), or nil
	udp  net.PacketConn // its UDP socket
}

// New makes a server; Start gives it a config.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if opts.Announce == nil {
		opts.Announce = newTextLogger(opts.Stdout)
	}
	return &Server{opts: opts, listeners: map[string]*listener{}, started: time.Now()}
}

// Tree returns the live handler tree.
func (s *Server) Tree() *Tree { return s.tree.Load() }

// Start builds the tree for cfg, opens every listener and starts serving.
// It prints one "portico: serving URL (site NAME)" line per listener.
func (s *Server) Start(cfg *config.Config) error {
	// Before any script or worker starts: their orphans must come back to
	// portico, not init, to be found and reaped (package reaper).
	if r, err := reaper.Start(s.opts.Logger); err != nil {
		s.opts.Logger.Warn("cannot become a child subreaper; orphans of scripts and workers go to init", "err", err)
	} else {
		s.reaper = r
	}
	stopReaper := func() {
		if s.reaper != nil {
			s.reaper.Close()
			s.reaper = nil
		}
	}
	t, err := s.build(cfg)
	if err != nil {
		stopReaper()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	opened, err := s.openListeners(t)
	if err != nil {
		t.Close(context.Background())
		stopReaper()
		return err
	}
	s.tree.Store(t)
	s.serve(opened)
	if err := s.setupACME(cfg); err != nil {
		s.opts.Logger.Error("acme: cannot start; tls = \"auto\" sites have no certificate", "err", err)
	}
	return nil
}

func (s *Server) build(cfg *config.Config) (*Tree, error) {
	t, err := Build(cfg, Deps{Logger: s.opts.Logger, Stdout: s.opts.Stdout, Stderr: s.opts.Stderr, Metrics: s.opts.Metrics})
	if err != nil {
		return nil, err
	}
	t.log, err = openAccessLog(cfg.Server.AccessLog, cfg.Server.LogFormat, s.opts.Stdout, s.opts.Stderr)
	if err != nil {
		t.Close(context.Background())
		return nil, err
	}
	return t, nil
}

// wantedListeners lists the listeners a tree needs, keyed like s.listeners.
func wantedListeners(t *Tree) map[string]*listener {
	want := map[string]*listener{}
	for i := range t.cfg.Sites {
		sc := &t.cfg.Sites[i]
		for _, addr := range sc.Listen {
			key := config.ListenerKey(addr)
			if _, ok := want[key]; !ok {
				want[key] = &listener{key: key, addr: addr, tls: sc.TLS != nil}
			}
		}
	}
	return want
}

// openListeners opens the listeners t needs that are not open yet. On error
// it closes what it opened.
func (s *Server) openListeners(t *Tree) ([]*listener, error) {
	var opened []*listener
	want := wantedListeners(t)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		l := want[key]
		if cur, ok := s.listeners[key]; ok && cur.tls == l.tls {
			continue
		}
		// No TCP keep-alive probes (nginx sends none either): idle_timeout
		// closes idle connections, and the probes' setsockopt calls cost
		// about a tenth of a new connection.
		lc := net.ListenConfig{KeepAlive: -1, Control: deferAccept}
		ln, err := lc.Listen(context.Background(), "tcp", l.addr)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", l.addr, unwrapOpError(err))
		}
		l.ln = ln
		opened = append(opened, l)
	}
	return opened, nil
}

func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// serve starts an http.Server on each opened listener.
func (s *Server) serve(opened []*listener) {
	t := s.tree.Load()
	srvCfg := t.cfg.Server
	for _, l := range opened {
		if old, ok := s.listeners[l.key]; ok {
			// Same address, TLS switched on or off: replace it.
			go old.srv.Shutdown(context.Background())
			go old.stopHTTP3(context.Background())
		}
		l.srv = &http.Server{
			Handler:           s.entry(l.key),
			ReadHeaderTimeout: srvCfg.ReadHeaderTimeout.D(),
			IdleTimeout:       srvCfg.IdleTimeout.D(),
			MaxHeaderBytes:    int(srvCfg.MaxHeaderBytes),
			ErrorLog:          log.New(&errorLogWriter{s.opts.Logger}, "", 0),
		}
		base := l.ln
		if !l.tls {
			base = rawAccept(base) // listen_linux.go
		}
		ln := s.accessListen(l.key, base) // access.go: PROXY headers, max_conns_per_ip
		if !l.tls {
			ln = s.fastListen(l.key, ln, srvCfg) // fast.go: hot static hits skip net/http
		}
		ln = progressListener{Listener: ln, writeTimeout: srvCfg.WriteTimeout.D(), writeBehind: l.tls}
		if l.tls {
			l.srv.TLSConfig = s.tlsConfig(l.key)
			if wantsHTTP3(t.cfg, l.key) {
				l.srv.Handler = s.startHTTP3(l, l.srv.TLSConfig, l.srv.Handler, srvCfg)
			}
			serveHTTP2(l.srv, srvCfg.WriteTimeout.D(), s.opts.Logger) // http2.go
		}
		s.listeners[l.key] = l
		s.announceListener(l, t)
		s.wg.Add(1)
		go func(l *listener, ln net.Listener) {
			defer s.wg.Done()
			var err error
			if l.tls {
				err = l.srv.ServeTLS(ln, "", "")
			} else {
				err = l.srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.opts.Logger.Error("listener stopped", "addr", l.addr, "err", err)
			}
		}(l, ln)
	}
}

func (t *Tree) siteNames(key string) []string {
	var names []string
	for i := range t.cfg.Sites {
		for _, a := range t.cfg.Sites[i].Listen {
			if config.ListenerKey(a) == key {
				names = append(names, t.cfg.Sites[i].Name)
				break
			}
		}
	}
	return names
}

// entry is the outermost handler of a listener: it pins the live tree for
// the request, enforces framing rules, recovers panics and logs.
func (s *Server) entry(key string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := s.tree.Load()
		t.inflight.Add(1)
		defer t.inflight.Add(-1)
		start := time.Now()
		rec := recorderPool.Get().(*recorder)
		rec.reset(w, start)
		rec.SetRecording(t.log != nil)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					t.finish(r, rec)
					panic(p)
				}
				s.opts.Logger.Error("panic serving request", "method", r.Method, "uri", r.RequestURI, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wroteHeader {
					rec.Header().Set("Connection", "close")
					errorpage.Write(rec, r, http.StatusInternalServerError)
				} else {
					t.finish(r, rec)
					panic(http.ErrAbortHandler) // cut the half-sent response
				}
			}
			t.finish(r, rec)
		}()
		// RFC 9112 section 6.3: a request with Transfer-Encoding is framed
		// by it alone; if it also carried Content-Length, something between
		// here and the client may have read it differently. net/http drops
		// the Content-Length header before we can see it, so close every
		// connection that sent a Transfer-Encoding once it is answered.
		t.noteClient(r, rec) // access.go: before a gate consumes Authorization
		if len(r.TransferEncoding) > 0 {
			rec.Header().Set("Connection", "close")
		}
		if s.acmeChallenge(rec, r) {
			return
		}
		if mode := t.cfg.Server.RequestID; mode != config.RequestIDOff && mode != "" {
			setRequestID(mode, r, rec)
		}
		v := t.byListener[key]
		if v == nil {
			errorpage.Write(rec, r, http.StatusNotFound)
			return
		}
		v.ServeHTTP(rec, r)
	})
}

// finish logs and counts a finished request and recycles its recorder.
func (t *Tree) finish(r *http.Request, rec *recorder) {
	if !rec.wroteHeader {
		rec.status = http.StatusOK
	}
	now := time.Now()
	if t.log != nil {
		t.log.log(r, rec, now)
	}
	t.metrics.observe(rec.siteMetrics, rec.site, rec.status, now.Sub(rec.start))
	rec.route.observe(rec.status, now.Sub(rec.start))
	*rec = recorder{}
	recorderPool.Put(rec)
}

// Reload builds a tree from cfg and swaps it in. New listeners are opened,
// unused ones closed gracefully. On any error the old tree keeps running.
func (s *Server) Reload(cfg *config.Config) error {
	t, err := s.build(cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		t.Close(context.Background())
		return errors.New("server is shutting down")
	}
	opened, err := s.openListeners(t)
	if err != nil {
		t.Close(context.Background())
		return err
	}
	old := s.tree.Swap(t)
	s.serve(opened)
	want := wantedListeners(t)
	for key, l := range s.listeners {
		if _, ok := want[key]; !ok {
			delete(s.listeners, key)
			go l.srv.Shutdown(context.Background())
			go l.stopHTTP3(context.Background())
		}
	}
	if err := s.setupACME(cfg); err != nil {
		s.opts.Logger.Error("acme: cannot start; tls = \"auto\" sites have no certificate", "err", err)
	}
	s.retire(old)
	return nil
}

// retire closes an old tree once its requests in flight are done.
func (s *Server) retire(old *Tree) {
	if old == nil {
		return
	}
	s.retired.Add(1)
	go func() {
		defer s.retired.Done()
		ctx, cancel := context.WithTimeout(context.Background(), old.cfg.Server.ShutdownTimeout.D())
		defer cancel()
		old.drain(ctx)
		if err := old.Close(ctx); err != nil {
			s.opts.Logger.Warn("closing old config", "err", err)
		}
	}()
}

// Shutdown stops accepting, waits for requests in flight (until ctx ends),
// then stops scripts, workers and health checks.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	ls := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.stopHTTP3(ctx)
			errs[i] = l.srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
	// Whatever is still running after the deadline (a hung script) is cut.
	for _, l := range ls {
		l.srv.Close()
	}
	var closeErr error
	if t := s.tree.Load(); t != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		closeErr = t.Close(cctx)
		cancel()
	}
	s.retired.Wait()
	s.wg.Wait()
	if m := s.acme.Swap(nil); m != nil {
		m.Close()
	}
	if s.reaper != nil {
		s.reaper.Close()
	}
	return errors.Join(append(errs, closeErr)...)
}

// Addrs returns the bound address of each listener, keyed by its config key.
func (s *Server) Addrs() map[string]net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]net.Addr{}
	for k, l := range s.listeners {
		out[k] = l.ln.Addr()
	}
	return out
}

// errorLogWriter sends net/http's own log lines (TLS handshake errors and
// the like) to the error log.
type errorLogWriter struct{ l *slog.Logger }

func (w *errorLogWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)), "source", "http")
	return len(p), nil
}
