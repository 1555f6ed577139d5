package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// addFunc records one problem at the position of a key path.
type addFunc func(ps *positions, path string, format string, args ...any)

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
	switch srv.ErrorLogFormat {
	case "text", "json":
	default:
		add(mainPS, "server.error_log_format", "error_log_format must be \"text\" or \"json\", not %q", srv.ErrorLogFormat)
	}
	if srv.Admin != "" {
		if _, port, err := net.SplitHostPort(srv.Admin); err != nil {
			add(mainPS, "server.admin", "admin %q: want host:port, e.g. \"127.0.0.1:2019\"", srv.Admin)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add(mainPS, "server.admin", "admin %q: bad port", srv.Admin)
		}
	}
	checkAdmin(add, mainPS, srv)
	switch srv.RequestID {
	case RequestIDOff, RequestIDGenerate, RequestIDPass:
	default:
		add(mainPS, "server.request_id", "request_id must be \"off\", \"generate\" or \"pass\", not %q", srv.RequestID)
	}
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
		if s.TLS != nil && !s.TLS.Auto {
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
		checkHeaderRules(add, ps, base+".header_rules", s.HeaderRules)
		checkRequestRules(add, ps, base+".request_headers", s.RequestHeaders)
		checkRewrites(add, ps, base, s.Rewrites)
		checkCompress(add, ps, base, s.Compress, s.CompressMinSize, s.CompressTypes, s.CompressLevel)
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
			checkRoute(add, ps, rb, r)
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

// cleanRoutePath: a route path in clean form. The server normalises
// request paths before routing (package reqpath: no dot segments, no
// "//"), so a route path holding them could never be reached; "?" and "#"
// are never part of a path; backslashes are typos.
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
