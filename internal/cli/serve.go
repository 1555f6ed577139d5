package cli

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"portico/internal/cache"
	"portico/internal/config"
	"portico/internal/devcert"
)

type cacheHandler = cache.Handler

// serveFlags are the flags of quick mode.
type serveFlags struct {
	bind, dir, proxy string
	wsgi             string // module:callable, imported from dir
	cgi, spa, browse bool
	open, tls        bool
}

func cmdServe(inv invocation, stdout, stderr io.Writer) int {
	f := serveFlags{
		bind: inv.str("bind"), dir: inv.str("directory"), proxy: inv.str("proxy"),
		cgi: inv.on("cgi"), spa: inv.on("spa"), browse: inv.on("browse"), open: inv.on("open"),
		tls: inv.on("tls"), wsgi: inv.str("wsgi"),
	}
	port := "8000"
	if len(inv.args) == 1 {
		n, err := strconv.Atoi(inv.args[0])
		if err != nil || n < 0 || n > 65535 {
			fmt.Fprintf(stderr, "portico serve: %q is not a port number (see 'portico serve --help')\n", inv.args[0])
			return 2
		}
		port = inv.args[0]
	}
	cfg, err := quickConfig(f, port)
	if err != nil {
		fmt.Fprintf(stderr, "portico serve: %v\n", err)
		return 1
	}
	if f.tls {
		// Quick mode's own log is text (its config sets no format), the
		// same as every other line runServer prints.
		if err := quickTLS(cfg, f.bind, newLogger(cfg.Server.ErrorLogFormat, stdout)); err != nil {
			fmt.Fprintf(stderr, "portico serve: %v\n", err)
			return 1
		}
	}
	return runServer(cfg, runOptions{quick: &quickInfo{host: f.bind, open: f.open, tls: f.tls}}, stdout, stderr)
}

// quickConfig builds the config quick mode runs: the folder as a static
// site, optionally with cgi-bin folders and a proxy fallback.
func quickConfig(f serveFlags, port string) (*config.Config, error) {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("folder %s does not exist", dir)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", dir)
	}
	bind := f.bind
	if strings.HasPrefix(bind, "[") && strings.HasSuffix(bind, "]") {
		bind = bind[1 : len(bind)-1]
	}
	site := config.Site{
		Name:   "quick",
		Listen: []string{net.JoinHostPort(bind, port)},
		// Quick mode compresses on the fly, as a development server should.
		Compress: config.QuickCompress(),
	}
	root := config.Route{Path: "/", Static: &config.Static{Root: dir, Browse: f.browse, SPA: f.spa}}
	if f.wsgi != "" {
		if f.proxy != "" || f.spa {
			return nil, fmt.Errorf("--wsgi serves the app at /: it does not go with --proxy or --spa")
		}
		root = config.Route{Path: "/", WSGI: &config.WSGI{App: f.wsgi, Dir: dir}}
	}
	if f.proxy != "" {
		var ups []string
		for _, u := range strings.Split(f.proxy, ",") {
			if u = strings.TrimSpace(u); u != "" {
				ups = append(ups, u)
			}
		}
		root.Proxy = &config.Proxy{Upstreams: ups}
		root.FilesFirst = true
	}
	site.Routes = append(site.Routes, root)
	if f.cgi {
		for _, name := range []string{"cgi-bin", "htbin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				c := &config.CGI{Root: p}
				// Like Python's http.server, run .py scripts with Python
				// even when they are not executable.
				if py := systemPython(); py != "" {
					c.Interpreters = map[string]string{".py": py}
				}
				site.Routes = append(site.Routes, config.Route{Path: "/" + name + "/", CGI: c})
			}
		}
	}
	cfg := &config.Config{Sites: []config.Site{site}}
	cfg.Server.AccessLog = "stderr"
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg); err != nil {
		return nil, fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "(flags): ", ""))
	}
	return cfg, nil
}

// systemPython finds a python3 that scripts can run. The system one comes
// first: as root, scripts run as nobody, who cannot reach an interpreter
// installed under root's home (pyenv, for one).
func systemPython() string {
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	py, _ := exec.LookPath("python3")
	return py
}

// quickTLS gives quick mode's site a development certificate (serve
// --tls) and says where its CA is and how to trust it.
func quickTLS(cfg *config.Config, bind string, announce *slog.Logger) error {
	dir, err := devcert.Dir()
	if err != nil {
		return err
	}
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	if b := strings.Trim(bind, "[]"); b != "" && b != "0.0.0.0" && b != "::" {
		names = append(names, b)
	}
	files, err := devcert.Make(dir, names)
	if err != nil {
		return err
	}
	for i := range cfg.Sites {
		cfg.Sites[i].TLS = &config.TLS{Cert: files.Cert, Key: files.Key}
	}
	what := "a development certificate from the local CA"
	if files.NewCA {
		what = "a development certificate from a new local CA"
	}
	announce.Info(fmt.Sprintf("portico: HTTPS with %s %s; %s", what, files.CA, devcert.TrustHint(files.CA)), "ca", files.CA)
	return nil
}
