package cli

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"portico/internal/admin"
	"portico/internal/config"
	"portico/internal/server"
)

// runOptions are what run and quick mode differ in.
type runOptions struct {
	// reload, when not nil, loads the config again on SIGHUP or POST /reload.
	reload func() (*config.Config, error)
	// quick is set by serve: after start, portico prints a URL to open
	// (localhost when it listens on every interface) and warns that other
	// machines can reach it.
	quick *quickInfo
}

// quickInfo is what quick mode tells the user after start.
type quickInfo struct {
	host string // the -b address; "" = every interface
	open bool   // --open
	tls  bool   // --tls: the URL is https
}

// runServer starts portico with cfg and serves until SIGTERM or SIGINT.
// Every message of its own goes through one slog logger in the format
// the config chose (error_log_format); the startup lines go to stdout in
// that same format.
func runServer(cfg *config.Config, opts runOptions, stdout, stderr io.Writer) int {
	lg, err := openLogs(cfg.Server, stdout, stderr)
	if err != nil {
		io.WriteString(stderr, "portico: "+err.Error()+"\n")
		return 1
	}
	defer lg.close()
	logger := lg.own
	defer redirectStdLog(logger)()
	metrics := metricsFor(cfg)
	srv := server.New(server.Options{Logger: logger, Announce: lg.announce, Stdout: stdout, Stderr: stderr, Metrics: metrics})
	if metrics != nil {
		metrics.Watch(srv)
	}

	// Signals are caught before listening, so a SIGTERM right after start
	// is a clean shutdown, not a kill.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if err := srv.Start(cfg); err != nil {
		logger.Error("portico: cannot start", "err", oneLine(err))
		return 1
	}
	doReload := func() error {
		if opts.reload == nil {
			return errors.New("no config file to reload")
		}
		ncfg, err := opts.reload()
		if err == nil {
			err = srv.Reload(ncfg)
		}
		srv.RecordReload(err)
		if err != nil {
			logger.Error("reload failed; the old config keeps running", "err", oneLine(err))
			return err
		}
		logger.Info("config reloaded")
		return nil
	}
	var adminSrv *http.Server
	if cfg.Server.Admin != "" {
		ln, err := net.Listen("tcp", cfg.Server.Admin)
		if err != nil {
			logger.Error("portico: cannot start the admin listener", "addr", cfg.Server.Admin, "err", oneLine(err))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(ctx)
			cancel()
			return 1
		}
		var reloadFn func() error
		if opts.reload != nil {
			reloadFn = doReload
		}
		adminSrv = &http.Server{
			Handler: admin.New(admin.Options{Logger: logger, Metrics: metrics.Handler(), Reload: reloadFn,
				Caches: func() []*cacheHandler { return srv.Tree().Caches() },
				Addr:   cfg.Server.Admin, Token: cfg.Server.AdminToken,
				Status: srv.Status, Version: shortVersion()}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		adminURL := "http://" + ln.Addr().String() + "/"
		lg.announce.Info("portico: admin on "+adminURL, "url", adminURL)
		go adminSrv.Serve(ln)
	}
	if q := opts.quick; q != nil {
		announceQuick(lg, q, srv.Addrs())
	}
	// Two garbage collections once the server listens. Loading the config
	// leaves garbage (TOML, templates, error pages), and a server whose
	// requests allocate nothing may not collect for a long time: Go's
	// periodic collection only starts after a first one. A process's
	// first two collections also build metadata once (about 0.8 MB: the
	// span sets of the size classes in use, kept in two halves that
	// alternate by cycle); without this it came with the first bursts of
	// traffic, counted against the connections that set it off
	// (bench/idle-rss.sh). Here it costs a few milliseconds before any
	// request.
	runtime.GC()
	runtime.GC()
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			logger.Info("SIGHUP: reloading config")
			doReload()
			continue
		}
		logger.Info("shutting down", "signal", sig.String())
		break
	}
	timeout := srv.Tree().Config().Server.ShutdownTimeout.D()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if adminSrv != nil {
		adminSrv.Shutdown(ctx)
	}
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("shutdown", "err", err)
	}
	return 0
}

// announceQuick tells the quick-mode user where to point a browser, warns
// when every interface listens, and opens the browser if asked.
func announceQuick(lg logs, q *quickInfo, addrs map[string]net.Addr) {
	u := browserURL(quickURL(q.host, q.tls), addrs)
	lg.announce.Info("portico: open "+u+" in a browser", "url", u)
	if allInterfaces(q.host) {
		lg.own.Warn("portico: listening on all interfaces: reachable from other machines (-b 127.0.0.1 keeps it on this one)")
	}
	if q.open {
		openBrowser(u, lg.own)
	}
}

// allInterfaces reports whether a -b address means every interface.
func allInterfaces(host string) bool {
	h := strings.Trim(host, "[]")
	return h == "" || h == "0.0.0.0" || h == "::"
}

// quickURL is the URL to open for a -b address: localhost stands for
// every interface (a browser cannot open 0.0.0.0 everywhere).
func quickURL(host string, tls bool) string {
	h := strings.Trim(host, "[]")
	if allInterfaces(h) {
		h = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(h, "0") + "/"
}

// browserURL replaces the port of want by the port actually bound, so
// "serve --open 0" opens the right page.
func browserURL(want string, addrs map[string]net.Addr) string {
	for _, a := range addrs {
		if ta, ok := a.(*net.TCPAddr); ok {
			u, err := url.Parse(want)
			if err != nil {
				return want
			}
			u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(ta.Port))
			return u.String()
		}
	}
	return want
}

// oneLine keeps the first line of an error: users get one clear line.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// metricsFor returns the metrics portico counts under cfg: none without
// an admin listener, the only place they are read (it starts with the
// process; a reload does not add one). Counting a 404 served at full
// speed took 0.8% of its CPU in a profile (2.6% before package durhist
// and the per-site lookup it replaced).
func metricsFor(cfg *config.Config) *server.Metrics {
	if cfg.Server.Admin == "" {
		return nil
	}
	return server.NewMetrics()
}
