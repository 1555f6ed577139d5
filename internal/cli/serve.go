package cli

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "serve [flags] [PORT]   (PORT defaults to 8000)", stdout)
	var f serveFlags
	fs.StringVar(&f.bind, "b", "", "`ADDR`ess to listen on (default: all interfaces)")
	fs.StringVar(&f.bind, "bind", "", "`ADDR`ess to listen on (same as -b)")
	fs.StringVar(&f.dir, "d", ".", "`DIR`ectory to serve")
	fs.StringVar(&f.dir, "directory", ".", "`DIR`ectory to serve (same as -d)")
	fs.BoolVar(&f.cgi, "cgi", false, "run executables under /cgi-bin/ and /htbin/ as CGI scripts")
	fs.BoolVar(&f.spa, "spa", false, "answer unknown page paths (Accept: text/html) with /index.html; with --proxy, only after the upstream answers 404")
	fs.BoolVar(&f.browse, "browse", true, "list folders without an index.html (--browse=false to turn off)")
	fs.BoolVar(&f.open, "open", false, "open the served URL in the default browser")
	fs.StringVar(&f.proxy, "proxy", "", "send requests that match no file to these upstream `URL[,URL...]`")
	fs.StringVar(&f.wsgi, "wsgi", "", "serve the WSGI app `MODULE:CALLABLE` (imported from the folder) at /, like gunicorn")
	fs.BoolVar(&f.tls, "tls", false, "serve HTTPS (and HTTP/2, HTTP/3) with a development certificate from a local CA")
	pos, code, done := parseFlags(fs, args, stderr)
	if done {
		return code
	}
	port := "8000"
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "portico serve: too many arguments %q (see 'portico serve -h')\n", pos[1:])
		return 2
	}
	if len(pos) == 1 {
		n, err := strconv.Atoi(pos[0])
		if err != nil || n < 0 || n > 65535 {
			fmt.Fprintf(stderr, "portico serve: %q is not a port number\n", pos[0])
			return 2
		}
		port = pos[0]
	}
	cfg, err := quickConfig(f, port)
	if err != nil {
		fmt.Fprintf(stderr, "portico serve: %v\n", err)
		return 1
	}
	if f.tls {
		if err := quickTLS(cfg, f.bind, stdout); err != nil {
			fmt.Fprintf(stderr, "portico serve: %v\n", err)
			return 1
		}
	}
	openURL := ""
	if f.open {
		host := f.bind
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		scheme := "http"
		if f.tls {
			scheme = "https"
		}
		openURL = scheme + "://" + net.JoinHostPort(host, port) + "/"
	}
	return runServer(cfg, nil, openURL, stdout, stderr)
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

// openBrowser opens url in the desktop's browser, or says why it cannot.
func openBrowser(url string, stderr io.Writer) {
	var cmd string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		cmd = "open"
	case "windows":
		cmd, args = "rundll32", []string{"url.dll,FileProtocolHandler"}
	default:
		for _, c := range []string{"xdg-open", "sensible-browser", "x-www-browser"} {
			if _, err := exec.LookPath(c); err == nil {
				cmd = c
				break
			}
		}
	}
	if cmd == "" {
		fmt.Fprintf(stderr, "portico: --open: no browser opener found (install xdg-utils); open %s yourself\n", url)
		return
	}
	c := exec.Command(cmd, append(args, url)...)
	if err := c.Start(); err != nil {
		fmt.Fprintf(stderr, "portico: --open: %s: %v; open %s yourself\n", cmd, err, url)
		return
	}
	go c.Wait()
}

// quickTLS gives quick mode's site a development certificate (serve
// --tls) and says where its CA is and how to trust it.
func quickTLS(cfg *config.Config, bind string, stdout io.Writer) error {
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
	fmt.Fprintf(stdout, "portico: HTTPS with %s %s; %s\n", what, files.CA, devcert.TrustHint(files.CA))
	return nil
}
