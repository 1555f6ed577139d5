package config

import (
	"fmt"
	"strings"
)

// checkRoute checks what one route sets beyond its path: its handler
// kind, each handler's section and the count bounds (bounds.go). rb is
// the route's key path ("site[0].route[2]").
func checkRoute(add addFunc, ps *positions, rb string, r *Route) {
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
	if r.FastCGI != nil {
		kinds = append(kinds, "fastcgi")
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
	checkRequestRules(add, ps, rb+".request_headers", r.RequestHeaders)
	checkCompress(add, ps, rb, r.Compress, r.CompressMinSize, r.CompressTypes, r.CompressLevel)
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
		checkCGICounts(add, ps, rb+".cgi", c)
		checkCGILimits(add, ps, rb+".cgi", c)
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
		checkProxyCounts(add, ps, rb+".proxy", p)
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
		checkWSGICounts(add, ps, rb+".wsgi", w)
		checkDir(add, ps, rb+".wsgi.dir", "wsgi dir", w.Dir)
		if w.Warmup != "" && (!strings.HasPrefix(w.Warmup, "/") || hasCtl(w.Warmup) || strings.ContainsAny(w.Warmup, " #")) {
			add(ps, rb+".wsgi.warmup", "warmup %q must be a path starting with \"/\", without spaces", w.Warmup)
		}
		if hasCtl(w.User) || strings.ContainsAny(w.User, " :/") {
			add(ps, rb+".wsgi.user", "wsgi user %q is not a user name", w.User)
		}
		for _, k := range sortedKeys(w.Env) {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(w.Env[k], "\x00") {
				add(ps, rb+".wsgi.env", "env %q: names must be non-empty without \"=\", and neither name nor value may hold a NUL byte", k)
			}
		}
	}
	if f := r.FastCGI; f != nil {
		checkFastCGI(add, ps, rb+".fastcgi", f)
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
		if c.TagHeader != "" && !validHeaderName(c.TagHeader) {
			add(ps, rb+".cache.tag_header", "tag_header %q is not a header field name", c.TagHeader)
		}
		if _, err := ParseCacheKey(c.Key); err != nil {
			add(ps, rb+".cache.key", "%v", err)
		}
	}
}
