package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Problem is one thing wrong with a config, at a place in a file.
type Problem struct {
	Pos Position
	Msg string
}

func (p Problem) Error() string { return p.Pos.String() + ": " + p.Msg }

func (ps Problems) hasLine(line int) bool {
	for _, p := range ps {
		if p.Pos.Line == line {
			return true
		}
	}
	return false
}

// Problems is every problem found in a config. Load returns it as its error
// so that `portico check` can print them all at once, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads the config file at path and every file its server.include
// globs name, decodes them strictly, resolves relative paths against the
// folder of the file that names them, fills in defaults and validates.
// The error, if any, is a Problems listing every problem with file and line.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Problems{{Pos: Position{File: path}, Msg: err.Error()}}
	}
	cfg := &Config{File: abs}
	var probs Problems
	main, ps, p := decodeFile(abs, false)
	probs = append(probs, p...)
	if main == nil {
		return nil, probs
	}
	cfg.Server = main.Server
	cfg.Sites = main.Sites
	sources := make([]*positions, len(cfg.Sites))
	for i := range sources {
		sources[i] = ps
	}
	dir := filepath.Dir(abs)
	resolveSites(cfg.Sites, dir, ps, 0)
	if cfg.Server.AccessLog != "" && !isLogKeyword(cfg.Server.AccessLog) {
		cfg.Server.AccessLog = resolve(dir, cfg.Server.AccessLog)
	}
	if cfg.Server.ErrorLog != "" && !isLogKeyword(cfg.Server.ErrorLog) {
		cfg.Server.ErrorLog = resolve(dir, cfg.Server.ErrorLog)
	}

	for k, pattern := range cfg.Server.Include {
		incPos := ps.at(fmt.Sprintf("server.include[%d]", k))
		matches, err := filepath.Glob(resolve(dir, pattern))
		if err != nil {
			probs = append(probs, Problem{incPos, fmt.Sprintf("include %q: %v", pattern, err)})
			continue
		}
		if len(matches) == 0 && !hasMeta(pattern) {
			// A glob may match nothing (an empty sites-enabled); a plain
			// file name that names nothing is a mistake.
			probs = append(probs, Problem{incPos, fmt.Sprintf("include %q: no such file", pattern)})
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			if m == abs {
				continue
			}
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				if !hasMeta(pattern) {
					probs = append(probs, Problem{incPos, fmt.Sprintf("include %q is a folder: use a glob such as %q", pattern, filepath.Join(pattern, "*.toml"))})
				}
				continue
			}
			inc, ips, p := decodeFile(m, true)
			if ips == nil {
				// Unreadable: point at the include line, which has one.
				for _, q := range p {
					probs = append(probs, Problem{incPos, fmt.Sprintf("include %q: %s", pattern, strings.Replace(q.Msg, "config", m, 1))})
				}
				continue
			}
			probs = append(probs, p...)
			if inc == nil {
				continue
			}
			if !serverEmpty(inc.Server) || ips.has("server") {
				pos := ips.first("server")
				if pos.Line == 0 {
					pos.Line = 1
				}
				probs = append(probs, Problem{pos, "[server] is only allowed in the main config file"})
			}
			resolveSites(inc.Sites, filepath.Dir(m), ips, 0)
			for range inc.Sites {
				sources = append(sources, ips)
			}
			cfg.Sites = append(cfg.Sites, inc.Sites...)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	ApplyDefaults(cfg)
	probs = append(probs, validate(cfg, ps, sources)...)
	if len(probs) > 0 {
		return nil, probs
	}
	return cfg, nil
}

// sortByLine orders the problems of one file by line, keeping the order
// of problems on one line.
func sortByLine(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Pos.Line < ps[j].Pos.Line })
}

func hasMeta(pattern string) bool { return strings.ContainsAny(pattern, `*?[\`) }

func serverEmpty(s Server) bool {
	return s.ShutdownTimeout == 0 && s.AccessLog == "" && s.LogFormat == "" && s.ErrorLog == "" &&
		s.Admin == "" && len(s.Include) == 0 && s.ReadHeaderTimeout == 0 && s.ReadTimeout == 0 &&
		s.WriteTimeout == 0 && s.IdleTimeout == 0 && s.MaxHeaderBytes == 0 && s.MaxBodySize == 0 &&
		len(s.TrustedProxies) == 0 && s.MaxConnsPerIP == 0
}

// decodeFile strictly decodes one file. Sources of sites and routes are
// filled from the position index.
func decodeFile(path string, included bool) (*Config, *positions, Problems) {
	data, err := readConfig(path, included)
	if err != nil {
		return nil, nil, Problems{{Pos: Position{File: path}, Msg: "cannot read config: " + unwrapPathError(err)}}
	}
	ps := scanPositions(path, data)
	kindProbs := append(checkKeyCase(ps), checkKinds(ps)...)
	var cfg Config
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		probs := kindProbs
		for _, p := range decodeProblems(path, err, ps) {
			if len(kindProbs) > 0 && (p.Pos.Line == 0 || kindProbs.hasLine(p.Pos.Line)) {
				continue // the same problem, already reported with its line
			}
			probs = append(probs, p)
		}
		sortByLine(probs)
		return nil, ps, probs
	}
	if len(kindProbs) > 0 {
		sortByLine(kindProbs)
		return nil, ps, kindProbs
	}
	for i := range cfg.Sites {
		cfg.Sites[i].Source = ps.at(fmt.Sprintf("site[%d]", i))
		for j := range cfg.Sites[i].Routes {
			cfg.Sites[i].Routes[j].Source = ps.at(fmt.Sprintf("site[%d].route[%d]", i, j))
		}
	}
	return &cfg, ps, nil
}

// maxConfigSize bounds one config file; a bigger one is surely a mistake
// (an include glob that matched a log file, /dev/zero).
const maxConfigSize = 8 << 20

// readConfig reads one config file. An included file must be a regular
// file: a glob must not block on a FIFO or read a device forever. The main
// file may be a pipe (`portico check -c <(generate)`).
func readConfig(path string, included bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		return nil, errors.New("is a folder")
	case included && !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case fi.Mode()&(os.ModeDevice|os.ModeSocket) != 0:
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("larger than %dMB", maxConfigSize>>20)
	}
	return data, nil
}

func decodeProblems(path string, err error, ps *positions) Problems {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var out Problems
		for _, e := range strict.Errors {
			row, _ := e.Position()
			key := fullKey(ps, row, e.Key())
			msg := fmt.Sprintf("unknown key %q", strings.Join(key, "."))
			if hint := suggestKey(key); hint != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", hint)
			} else if len(key) == 1 {
				if _, ok := fieldByKey(reflect.TypeOf(Server{}), key[0]); ok {
					msg += " (it belongs in the [server] table)"
				} else if _, ok := fieldByKey(reflect.TypeOf(Site{}), key[0]); ok {
					msg += " (it belongs in a [[site]] table)"
				}
			}
			out = append(out, Problem{Position{path, row}, msg})
		}
		return out
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := friendlyMismatch(strings.TrimPrefix(de.Error(), "toml: "))
		if k := de.Key(); len(k) > 0 {
			msg = fmt.Sprintf("%s: %s", strings.Join(k, "."), msg)
		}
		return Problems{{Position{path, row}, msg}}
	}
	return Problems{{Position{File: path}, err.Error()}}
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func isLogKeyword(s string) bool { return s == "off" || s == "stdout" || s == "stderr" }

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// resolveSites makes every path in the sites absolute, relative to dir.
func resolveSites(sites []Site, dir string, ps *positions, _ int) {
	for i := range sites {
		s := &sites[i]
		if s.TLS != nil {
			s.TLS.Cert = resolve(dir, s.TLS.Cert)
			s.TLS.Key = resolve(dir, s.TLS.Key)
		}
		if s.BasicAuth != nil {
			s.BasicAuth.Htpasswd = resolve(dir, s.BasicAuth.Htpasswd)
		}
		for j := range s.Routes {
			r := &s.Routes[j]
			if r.BasicAuth != nil {
				r.BasicAuth.Htpasswd = resolve(dir, r.BasicAuth.Htpasswd)
			}
			if r.Static != nil {
				r.Static.Root = resolve(dir, r.Static.Root)
			}
			if r.CGI != nil {
				r.CGI.Root = resolve(dir, r.CGI.Root)
			}
			if r.WSGI != nil {
				if r.WSGI.Dir == "" {
					r.WSGI.Dir = dir
				} else {
					r.WSGI.Dir = resolve(dir, r.WSGI.Dir)
				}
			}
			if r.Proxy != nil {
				for k, u := range r.Proxy.Upstreams {
					r.Proxy.Upstreams[k] = resolveUpstream(dir, u)
				}
			}
		}
	}
}

// Validate checks a config built in memory (quick mode) the same way Load
// checks a file. The config's defaults must have been applied.
func Validate(cfg *Config) error {
	if p := validate(cfg, nil, nil); len(p) > 0 {
		return p
	}
	return nil
}

// validate checks everything that can be checked without building handlers.
// mainPS indexes the main file, sources[i] the file of site i; both may be
// nil for a config built in memory.
func validate(cfg *Config, mainPS *positions, sources []*positions) Problems {
	var probs Problems
	psOf := func(i int) *positions {
		if i < len(sources) {
			return sources[i]
		}
		return nil
	}
	add := func(ps *positions, path string, format string, args ...any) {
		pos := Position{File: cfg.File}
		if ps != nil {
			pos = ps.at(path)
		}
		probs = append(probs, Problem{pos, fmt.Sprintf(format, args...)})
	}
	srv := cfg.Server
	switch srv.LogFormat {
	case "combined", "json":
	default:
		add(mainPS, "server.log_format", "log_format must be \"combined\" or \"json\", not %q", srv.LogFormat)
	}
	if srv.Admin != "" {
		if _, port, err := net.SplitHostPort(srv.Admin); err != nil {
			add(mainPS, "server.admin", "admin %q: want host:port, e.g. \"127.0.0.1:2019\"", srv.Admin)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add(mainPS, "server.admin", "admin %q: bad port", srv.Admin)
		}
	}
	checkAdmin(add, mainPS, srv)
	for _, lg := range []struct{ key, path string }{{"access_log", srv.AccessLog}, {"error_log", srv.ErrorLog}} {
		if lg.path == "" || isLogKeyword(lg.path) || !filepath.IsAbs(lg.path) {
			continue
		}
		if fi, err := os.Stat(filepath.Dir(lg.path)); err != nil || !fi.IsDir() {
			add(mainPS, "server."+lg.key, "%s %s: folder %s does not exist", lg.key, lg.path, filepath.Dir(lg.path))
		} else if fi, err := os.Stat(lg.path); err == nil && fi.IsDir() {
			add(mainPS, "server."+lg.key, "%s %s is a folder, want a file", lg.key, lg.path)
		}
	}
	if srv.MaxBodySize <= 0 {
		add(mainPS, "server.max_body_size", "max_body_size must be positive")
	}
	if srv.MaxHeaderBytes <= 0 {
		add(mainPS, "server.max_header_bytes", "max_header_bytes must be positive")
	}
	for k, tp := range srv.TrustedProxies {
		if _, err := ParsePrefix(tp); err != nil {
			add(mainPS, fmt.Sprintf("server.trusted_proxies[%d]", k), "trusted_proxies: %v", err)
		}
	}
	if len(cfg.Sites) == 0 {
		pos := Position{File: cfg.File}
		if mainPS != nil {
			pos = mainPS.at("server")
			if pos.Line == 0 {
				pos.Line = 1
			}
		}
		probs = append(probs, Problem{pos, "no [[site]] defined: nothing to serve"})
	}

	// claims detects two sites answering the same host on one listener.
	type claim struct{ listener, host string }
	claimed := map[claim]int{} // -> index of the site
	tlsOf := map[string]bool{}
	tlsSet := map[string]bool{}
	names := map[string]Position{}

	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		ps := psOf(i)
		base := fmt.Sprintf("site[%d]", localIndex(sources, i))
		if prev, ok := names[s.Name]; ok {
			add(ps, base+".name", "site name %q already used at %s", s.Name, prev)
		} else {
			names[s.Name] = s.Source
		}
		if len(s.Listen) == 0 {
			add(ps, base, "site %q: listen is empty", s.Name)
		}
		for k, l := range s.Listen {
			lk := fmt.Sprintf("%s.listen[%d]", base, k)
			if _, port, err := net.SplitHostPort(l); err != nil {
				add(ps, lk, "listen %q: want host:port, e.g. \":8080\"", l)
				continue
			} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				add(ps, lk, "listen %q: bad port", l)
				continue
			}
			key := ListenerKey(l)
			if srv.Admin != "" && key == ListenerKey(srv.Admin) {
				add(ps, lk, "listen %q: the same address as server.admin", l)
			}
			if tlsSet[key] && tlsOf[key] != (s.TLS != nil) {
				add(ps, base+".tls", "listener %s mixes sites with and without tls", l)
			}
			tlsSet[key], tlsOf[key] = true, s.TLS != nil
			hosts := s.Hosts
			if len(hosts) == 0 {
				hosts = []string{""}
			}
			for k, h := range hosts {
				hk := fmt.Sprintf("%s.hosts[%d]", base, k)
				if len(s.Hosts) == 0 {
					hk = lk
				}
				c := claim{key, h}
				if other, ok := claimed[c]; ok {
					what := "host " + strconvQuote(h)
					if h == "" {
						what = "the default site (no hosts)"
					}
					if other == i {
						add(ps, hk, "site %q: %s is listed twice for listener %s", s.Name, what, l)
					} else {
						add(ps, hk, "site %q: %s on listener %s is already claimed by site %q (%s)", s.Name, what, l, cfg.Sites[other].Name, cfg.Sites[other].Source)
					}
					continue
				}
				claimed[c] = i
			}
		}
		for k, h := range s.Hosts {
			if h == "" || strings.ContainsAny(h, " /:") || strings.Contains(h[1:], "*") || (strings.HasPrefix(h, "*") && !strings.HasPrefix(h, "*.")) {
				add(ps, fmt.Sprintf("%s.hosts[%d]", base, k), "host %q: want a name like \"example.test\" or \"*.example.test\"", h)
			}
		}
		if s.TLS != nil {
			if s.TLS.Cert == "" || s.TLS.Key == "" {
				add(ps, base+".tls", "tls needs both cert and key")
			} else {
				for _, f := range []string{s.TLS.Cert, s.TLS.Key} {
					if _, err := os.Stat(f); err != nil {
						add(ps, base+".tls", "tls file %s: %s", f, unwrapPathError(err))
					}
				}
			}
		}
		for _, k := range sortedKeys(s.Headers) {
			if !validHeaderName(k) {
				add(ps, base+".headers", "header name %q is not valid", k)
			} else if hasCtl(s.Headers[k]) {
				add(ps, base+".headers", "header %s: the value must not hold control characters (such as a line break)", k)
			}
		}
		if len(s.Routes) == 0 {
			add(ps, base, "site %q has no routes", s.Name)
		}
		checkAccess(add, ps, base, s.BasicAuth, s.ForwardAuth, s.Allow, s.Deny, s.RateLimit)
		paths := map[string]bool{}
		for j := range s.Routes {
			r := &s.Routes[j]
			rb := fmt.Sprintf("%s.route[%d]", base, j)
			if !strings.HasPrefix(r.Path, "/") {
				add(ps, rb+".path", "route path %q must start with \"/\"", r.Path)
			} else if !cleanRoutePath(r.Path) {
				add(ps, rb+".path", "route path %q must be a clean path: no \".\" or \"..\" segments, no \"//\", \"?\", \"#\", backslash or control characters", r.Path)
			}
			if paths[r.Path] {
				add(ps, rb+".path", "route path %q is defined twice in site %q", r.Path, s.Name)
			}
			paths[r.Path] = true
			if r.MaxBodySize < 0 {
				add(ps, rb+".max_body_size", "max_body_size must not be negative")
			}
			var kinds []string
			if r.Static != nil {
				kinds = append(kinds, "static")
			}
			if r.CGI != nil {
				kinds = append(kinds, "cgi")
			}
			if r.Proxy != nil {
				kinds = append(kinds, "proxy")
			}
			if r.WSGI != nil {
				kinds = append(kinds, "wsgi")
			}
			if r.Redirect != nil {
				kinds = append(kinds, "redirect")
			}
			switch {
			case len(kinds) == 0:
				add(ps, rb, "route %q has no handler: set one of static, cgi, proxy, wsgi, redirect", r.Path)
			case len(kinds) > 1 && !(r.FilesFirst && len(kinds) == 2 && r.Static != nil && r.Proxy != nil):
				add(ps, rb, "route %q has %d handlers (%s): a route has exactly one", r.Path, len(kinds), strings.Join(kinds, ", "))
			}
			if r.StripPrefix && (r.Proxy == nil || r.Static != nil) {
				add(ps, rb+".strip_prefix", "route %q: strip_prefix applies to proxy routes only (static and cgi roots already map the route path onto the root; wsgi gets it as SCRIPT_NAME)", r.Path)
			}
			if r.Cache != nil && r.Proxy == nil && r.WSGI == nil {
				add(ps, rb+".cache", "route %q: cache works only with proxy or wsgi", r.Path)
			}
			checkHeaderRules(add, ps, rb+".headers", r.Headers)
			checkAccess(add, ps, rb, r.BasicAuth, r.ForwardAuth, r.Allow, r.Deny, r.RateLimit)
			if st := r.Static; st != nil {
				checkDir(add, ps, rb+".static.root", "static root", st.Root)
				for k, ix := range st.Index {
					if ix == "" || strings.ContainsAny(ix, `/\`) {
						add(ps, fmt.Sprintf("%s.static.index[%d]", rb, k), "index %q must be a plain file name", ix)
					}
				}
			}
			if c := r.CGI; c != nil {
				checkDir(add, ps, rb+".cgi.root", "cgi root", c.Root)
				if c.MaxProcesses < 1 {
					add(ps, rb+".cgi.max_processes", "max_processes must be at least 1")
				}
				for _, ext := range sortedKeys(c.Interpreters) {
					if !strings.HasPrefix(ext, ".") || len(ext) < 2 || strings.ContainsAny(ext, `/\`) {
						add(ps, rb+".cgi.interpreters", "interpreter key %q must be an extension like \".py\"", ext)
					} else if strings.TrimSpace(c.Interpreters[ext]) == "" {
						add(ps, rb+".cgi.interpreters", "interpreter for %q is empty", ext)
					}
				}
				for _, k := range sortedKeys(c.Env) {
					if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(c.Env[k], "\x00") {
						add(ps, rb+".cgi.env", "env %q: names must be non-empty without \"=\", and neither name nor value may hold a NUL byte", k)
					}
				}
			}
			if p := r.Proxy; p != nil {
				if len(p.Upstreams) == 0 {
					add(ps, rb+".proxy.upstreams", "proxy needs at least one upstream")
				}
				switch p.Balance {
				case "round_robin", "least_conn", "ip_hash", "random":
				default:
					add(ps, rb+".proxy.balance", "balance must be round_robin, least_conn, ip_hash or random, not %q", p.Balance)
				}
				for k, u := range p.Upstreams {
					if _, err := ParseUpstream(u); err != nil {
						add(ps, fmt.Sprintf("%s.proxy.upstreams[%d]", rb, k), "upstream %q: %v", u, err)
					}
				}
				if p.MaxFails < 0 {
					add(ps, rb+".proxy.max_fails", "max_fails must not be negative")
				}
				if h := p.Health; h != nil {
					if !strings.HasPrefix(h.Path, "/") {
						add(ps, rb+".proxy.health.path", "health path %q must start with \"/\"", h.Path)
					}
					if h.Expect != 0 && (h.Expect < 100 || h.Expect > 599) {
						add(ps, rb+".proxy.health.expect", "health expect %d is not an HTTP status code", h.Expect)
					}
				}
			}
			if w := r.WSGI; w != nil {
				if mod, fn, ok := strings.Cut(w.App, ":"); !ok || mod == "" || fn == "" {
					add(ps, rb+".wsgi.app", "wsgi app %q: want \"module:callable\"", w.App)
				}
				if w.Workers < 1 {
					add(ps, rb+".wsgi.workers", "workers must be at least 1")
				}
				checkDir(add, ps, rb+".wsgi.dir", "wsgi dir", w.Dir)
			}
			if rd := r.Redirect; rd != nil {
				if rd.To == "" {
					add(ps, rb+".redirect.to", "redirect needs \"to\"")
				} else if hasCtl(rd.To) || strings.ContainsAny(rd.To, " ") {
					add(ps, rb+".redirect.to", "redirect target %q must not hold spaces or control characters (escape them, e.g. %%20)", rd.To)
				}
				switch rd.Status {
				case 301, 302, 303, 307, 308:
				default:
					add(ps, rb+".redirect.status", "redirect status must be 301, 302, 303, 307 or 308, not %d", rd.Status)
				}
			}
			if c := r.Cache; c != nil {
				if c.MaxSize < 0 {
					add(ps, rb+".cache.max_size", "max_size must not be negative")
				}
				if c.MaxObjectSize < 0 {
					add(ps, rb+".cache.max_object_size", "max_object_size must not be negative")
				}
				if c.Store != "memory" && !strings.HasPrefix(c.Store, "redis://") && !strings.HasPrefix(c.Store, "rediss://") {
					add(ps, rb+".cache.store", "cache store must be \"memory\" or a redis:// URL, not %q", c.Store)
				}
				for n, k := range c.Key {
					switch k {
					case "method", "scheme", "host", "path", "query":
					default:
						add(ps, fmt.Sprintf("%s.cache.key[%d]", rb, n), "cache key part %q: want method, scheme, host, path or query", k)
					}
				}
			}
		}
	}
	checkProxyProtocol(add, func(i int) *positions {
		if i < 0 {
			return mainPS
		}
		return psOf(i)
	}, func(i int) string { return fmt.Sprintf("site[%d]", localIndex(sources, i)) }, cfg)
	return probs
}

// localIndex turns a global site index into the index within its own file,
// which is what the position index knows.
func localIndex(sources []*positions, i int) int {
	if i >= len(sources) {
		return i
	}
	n := 0
	for k := 0; k < i; k++ {
		if sources[k] == sources[i] {
			n++
		}
	}
	return n
}

func checkDir(add func(*positions, string, string, ...any), ps *positions, path, what, dir string) {
	if dir == "" {
		add(ps, path, "%s is required", what)
		return
	}
	fi, err := os.Stat(dir)
	if err != nil {
		add(ps, path, "%s %s: %s", what, dir, unwrapPathError(err))
		return
	}
	if !fi.IsDir() {
		add(ps, path, "%s %s is not a folder", what, dir)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hasCtl reports ASCII control characters (tab excepted), which would
// split or smuggle a header.
func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// cleanRoutePath: a route path in clean form. The server rejects request
// paths with dot segments, so a route path holding them could never be
// reached; "?" and "#" are never part of a path; "//" and backslashes are
// typos.
func cleanRoutePath(p string) bool {
	if hasCtl(p) || strings.ContainsAny(p, "?#\\") || strings.Contains(p, "//") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func strconvQuote(s string) string { return strconv.Quote(s) }

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

// ListenerKey normalises a listen address so ":80" and "0.0.0.0:80" that
// name the same socket compare equal enough for conflict checks.
func ListenerKey(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "0.0.0.0" || host == "::" {
		host = ""
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}
