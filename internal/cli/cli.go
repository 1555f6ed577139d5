// Package cli implements portico's subcommands: flag parsing, signals and
// the one-line error messages a user sees. The work itself lives in the
// config and server packages.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"portico/internal/admin"
	"portico/internal/config"
	"portico/internal/server"
)

const usage = `portico: a web server for files, CGI scripts and app servers

Usage:
  portico serve [flags] [PORT]   serve a folder now (like python3 -m http.server)
  portico run   [-c FILE]        run from a config file (default ./portico.toml)
  portico check [-c FILE]        validate a config file; print ok or each problem
  portico reload [-c FILE]       ask the running portico to reload (needs server.admin)
  portico version                print the version, commit and build date

Run 'portico COMMAND -h' for the flags of a command.
`

// Main runs portico with args (without the program name) and returns the
// process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "reload":
		return cmdReload(args[1:], stdout, stderr)
	case "version", "--version", "-version", "-v":
		fmt.Fprintln(stdout, printVersion())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "portico: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// newFlagSet makes a flag set whose errors are one line and whose -h
// prints the command's usage to stdout.
func newFlagSet(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: portico %s\n\nFlags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("portico serve 8080 --cgi"). It returns the positional arguments, or
// done=true with an exit code when the command should stop (-h or an error).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (pos []string, code int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.Usage()
				return nil, 0, true
			}
			fmt.Fprintf(stderr, "portico %s: %v (see 'portico %s -h')\n", fs.Name(), err, fs.Name())
			return nil, 2, true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, false
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func configFlag(fs *flag.FlagSet) *string {
	c := new(string)
	fs.StringVar(c, "c", "portico.toml", "config `FILE`")
	fs.StringVar(c, "config", "portico.toml", "config `FILE` (same as -c)")
	return c
}

// loadConfigArgs parses the flags of a command that takes a config file
// (-c FILE, or FILE as its argument) and loads that file. done means the
// command should exit with code now (-h, a bad flag, a bad config).
func loadConfigArgs(name string, args []string, stdout, stderr io.Writer) (file string, cfg *config.Config, code int, done bool) {
	fs := newFlagSet(name, name+" [-c FILE]", stdout)
	f := configFlag(fs)
	pos, code, done := parseFlags(fs, args, stderr)
	if done {
		return "", nil, code, true
	}
	if len(pos) > 0 {
		*f = pos[0]
	}
	cfg, err := config.Load(*f)
	if err != nil {
		printProblems(stderr, err)
		return "", nil, 1, true
	}
	return *f, cfg, 0, false
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	_, cfg, code, done := loadConfigArgs("check", args, stdout, stderr)
	if done {
		return code
	}
	// The same provision step as `run` (every handler validates and is
	// built), so check and run never disagree; but nothing long-lived is
	// started: no worker pool, no health check, no listener. Each WSGI app
	// is imported once, in one child that is killed with its group.
	t, err := server.Provision(cfg, server.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	err = t.Check()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Close(ctx)
	cancel()
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// printProblems prints each line of a config or build error.
func printProblems(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			fmt.Fprintln(w, line)
		}
	}
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	file, cfg, code, done := loadConfigArgs("run", args, stdout, stderr)
	if done {
		return code
	}
	return runServer(cfg, func() (*config.Config, error) { return config.Load(file) }, "", stdout, stderr)
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	file, cfg, code, done := loadConfigArgs("reload", args, stdout, stderr)
	if done {
		return code
	}
	if cfg.Server.Admin == "" {
		fmt.Fprintf(stderr, "portico reload: %s sets no server.admin address; send SIGHUP to the portico process instead\n", file)
		return 1
	}
	host, port, _ := net.SplitHostPort(cfg.Server.Admin)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 60 * time.Second}
	req, err := http.NewRequest(http.MethodPost, "http://"+net.JoinHostPort(host, port)+"/reload", nil)
	if err != nil {
		fmt.Fprintf(stderr, "portico reload: %v\n", err)
		return 1
	}
	req.Header.Set("Content-Type", "application/json") // the admin refuses simple types (CSRF)
	if cfg.Server.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Server.AdminToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "portico reload: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "portico reload: %s\n", strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintln(stdout, "reloaded")
	return 0
}

// runServer starts portico with cfg and serves until SIGTERM or SIGINT.
// reload, when not nil, loads the config again on SIGHUP or POST /reload.
func runServer(cfg *config.Config, reload func() (*config.Config, error), openURL string, stdout, stderr io.Writer) int {
	errOut, closeErrLog, err := openErrorLog(cfg.Server.ErrorLog, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portico: %v\n", err)
		return 1
	}
	defer closeErrLog()
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	metrics := server.NewMetrics()
	srv := server.New(server.Options{Logger: logger, Stdout: stdout, Stderr: stderr, Metrics: metrics})
	metrics.WatchCaches(srv)
	metrics.WatchWSGI(srv)

	// Signals are caught before listening, so a SIGTERM right after start
	// is a clean shutdown, not a kill.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if err := srv.Start(cfg); err != nil {
		fmt.Fprintf(stderr, "portico: %v\n", oneLine(err))
		return 1
	}
	doReload := func() error {
		if reload == nil {
			return errors.New("no config file to reload")
		}
		ncfg, err := reload()
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
			fmt.Fprintf(stderr, "portico: admin listen %s: %v\n", cfg.Server.Admin, oneLine(err))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(ctx)
			cancel()
			return 1
		}
		var reloadFn func() error
		if reload != nil {
			reloadFn = doReload
		}
		adminSrv = &http.Server{
			Handler: admin.New(admin.Options{Logger: logger, Metrics: metrics.Handler(), Reload: reloadFn,
				Caches: func() []*cacheHandler { return srv.Tree().Caches() },
				Addr:   cfg.Server.Admin, Token: cfg.Server.AdminToken,
				Status: srv.Status, Version: shortVersion()}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		fmt.Fprintf(stdout, "portico: admin on http://%s/\n", ln.Addr())
		go adminSrv.Serve(ln)
	}
	if openURL != "" {
		openBrowser(browserURL(openURL, srv.Addrs()), stderr)
	}
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

// browserURL replaces the port of want (the URL quick mode was asked to
// serve) by the port actually bound, so "serve --open 0" opens the right page.
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

func openErrorLog(dest string, stdout, stderr io.Writer) (io.Writer, func(), error) {
	switch dest {
	case "", "stderr":
		return stderr, func() {}, nil
	case "stdout":
		return stdout, func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("error log: %w", err)
	}
	return f, func() { f.Close() }, nil
}
