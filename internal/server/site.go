package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"portico/internal/errorpage"
	"portico/internal/fastpath"
)

// route is one built [[site.route]]: a prefix and its handler.
type route struct {
	path        string // as configured, e.g. "/api/"
	bare        string // path without its trailing slash ("/api"), "" for "/"
	maxBody     int64
	readTimeout time.Duration
	handler     http.Handler
	metrics     *routeObserver // nil without metrics (routemetrics.go)
	// forwardsFast: the handler's fast path may relay the request
	// upstream as received (a proxy without cache), so it is declined when
	// the request must carry a server-assigned X-Request-ID.
	forwardsFast bool
}

// matches reports whether the route's prefix matches p. A prefix ending in
// "/" also matches the path without it ("/api/" matches "/api").
func (rt *route) matches(p string) bool {
	return strings.HasPrefix(p, rt.path) || (rt.bare != "" && p == rt.bare && rt.path != rt.bare)
}

// site is one built [[site]]: its routes, longest prefix first.
type site struct {
	name    string
	routes  []*route
	headers [][2]string
	cert    *siteCert // nil unless the site has tls with files (ocsp.go)
	autoTLS bool      // tls = "auto": certificates from the ACME manager
	// rewrites run before routing (rewrite.go).
	rewrites []rewriteRule
	metrics  *siteMetrics // nil without metrics
}

func newSite(name string, routes []*route, headers map[string]string) *site {
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].path) > len(routes[j].path) })
	s := &site{name: name, routes: routes}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.headers = append(s.headers, [2]string{http.CanonicalHeaderKey(k), headers[k]})
	}
	return s
}

// route returns the route for the request path p: the longest matching
// prefix (routes are sorted longest first), or nil. Both engines call it.
func (s *site) route(p string) *route {
	for _, rt := range s.routes {
		if rt.matches(p) {
			return rt
		}
	}
	return nil
}

type redispatchKey struct{}

// maxRedispatch bounds chains of CGI local redirects.
const maxRedispatch = 10

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rec, ok := w.(*recorder); ok {
		rec.site = s.name
		rec.siteMetrics = s.metrics
		rec.siteHeaders = s.headers
	}
	h := w.Header()
	for _, kv := range s.headers {
		h[kv[0]] = []string{kv[1]}
	}
	s.dispatch(w, r)
}

// dispatch finds the route for r and serves it.
func (s *site) dispatch(w http.ResponseWriter, r *http.Request) {
	// One rule for every route (pathnorm.go): the path is normalised
	// before the rewrites and again after them; one that climbs above the
	// root, or hides a dot segment, is a 400.
	n, ok := normalizeRequest(r)
	if ok {
		if r2 := s.rewrite(n); r2 != n {
			n, ok = normalizeRequest(r2)
		}
	}
	if !ok {
		errorpage.WriteMessage(w, r, http.StatusBadRequest, "The request path is not valid.")
		return
	}
	r = n
	rt := s.route(r.URL.Path)
	if rt == nil {
		errorpage.Write(w, r, http.StatusNotFound)
		return
	}
	if rec, ok := w.(*recorder); ok {
		rec.route = rt.metrics
	}
	if r.ContentLength > rt.maxBody {
		w.Header().Set("Connection", "close")
		errorpage.Write(w, r, http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &progressBody{rc: http.NewResponseController(w), timeout: rt.readTimeout,
			body: http.MaxBytesReader(w, r.Body, rt.maxBody)}
	}
	rt.handler.ServeHTTP(w, r)
}

// redispatch serves a CGI local redirect: a new GET for target through the
// site's full routing, never straight to a handler (Apache CVE-2024-38476).
func (s *site) redispatch(w http.ResponseWriter, r *http.Request) {
	depth, _ := r.Context().Value(redispatchKey{}).(int)
	if depth >= maxRedispatch {
		errorpage.Write(w, r, http.StatusInternalServerError)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), redispatchKey{}, depth+1))
	restoreCredential(w, r) // access.go
	s.dispatch(w, r)
}

// stripHandler removes a route prefix before the next handler (a proxy)
// sees the request. It sits inside a route's cache, so cache keys and
// purges use the URL the client asked for.
type stripHandler struct {
	prefix string
	next   http.Handler
}

func (h stripHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.next.ServeHTTP(w, stripPrefix(r, h.prefix))
}

// ServeFast strips the prefix for the fast path when the escaped path
// starts with it literally (otherwise net/http's stripPrefix, which can
// re-escape, decides). The request is copied: the access log must still
// show the URI the client sent.
func (h stripHandler) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	fh, ok := h.next.(fastpath.Handler)
	if !ok || !strings.HasPrefix(req.RawPath, h.prefix) || !strings.HasPrefix(req.Path, h.prefix) {
		return false
	}
	r2 := *req
	r2.URI = withSlash(req.URI[len(h.prefix):])
	r2.RawPath = withSlash(req.RawPath[len(h.prefix):])
	r2.Path = withSlash(req.Path[len(h.prefix):])
	return fh.ServeFast(&r2, w)
}

// withSlash makes s start with "/" ("" -> "/", "?q" -> "/?q").
func withSlash(s string) string {
	if s == "" || s[0] != '/' {
		return "/" + s
	}
	return s
}

// stripPrefix returns a shallow copy of r whose path lacks prefix, keeping
// the escaped form (RawPath) consistent with the decoded one.
func stripPrefix(r *http.Request, prefix string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	r2.URL = &u
	u.Path = strings.TrimPrefix(r.URL.Path, prefix)
	if u.Path == "" || u.Path[0] != '/' {
		u.Path = "/" + u.Path
	}
	if r.URL.RawPath != "" {
		ep := strings.TrimPrefix(r.URL.RawPath, prefix)
		if ep == "" || ep[0] != '/' {
			ep = "/" + ep
		}
		if dec, err := url.PathUnescape(ep); err == nil && dec == u.Path {
			u.RawPath = ep
		} else {
			u.RawPath = ""
		}
	}
	return r2
}

// progressBody moves the connection's read deadline forward before each
// read of the request body, so a slow POST is cut off when it stalls, not
// when it is merely long.
type progressBody struct {
	rc      *http.ResponseController
	timeout time.Duration
	body    interface {
		Read([]byte) (int, error)
		Close() error
	}
}

func (b *progressBody) Read(p []byte) (int, error) {
	if b.timeout > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return b.body.Read(p)
}

func (b *progressBody) Close() error { return b.body.Close() }

// vhost picks the site of a request by its Host: exact names, then
// wildcards (longest suffix first), then the listener's default site. It
// picks the certificate of a TLS handshake too (certificate), by the same
// lookup, so SNI and Host can never choose different sites.
type vhost struct {
	exact     map[string]*site
	wildcards []wildcard
	fallback  *site
	firstCert *siteCert // of the first TLS site added
}

type wildcard struct {
	suffix string // ".example.test"
	site   *site
}

func (v *vhost) add(hosts []string, s *site) {
	if v.firstCert == nil {
		v.firstCert = s.cert
	}
	if len(hosts) == 0 {
		v.fallback = s
		return
	}
	for _, h := range hosts {
		if suf, ok := strings.CutPrefix(h, "*"); ok {
			v.wildcards = append(v.wildcards, wildcard{suf, s})
			continue
		}
		v.exact[h] = s
	}
	sort.SliceStable(v.wildcards, func(i, j int) bool { return len(v.wildcards[i].suffix) > len(v.wildcards[j].suffix) })
}

func (v *vhost) lookup(host string) *site {
	host = normalizeHost(host)
	if s, ok := v.exact[host]; ok {
		return s
	}
	for _, w := range v.wildcards {
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			return w.site
		}
	}
	return v.fallback
}

// certificate returns the certificate for a TLS handshake naming
// serverName: that of the site the same name routes to as a Host. A name
// no site claims (or no SNI at all) gets the default site's certificate,
// else the first TLS site's, so that the client sees a certificate (and
// then the 404 for an unknown host) rather than a handshake failure.
func (v *vhost) certificate(serverName string) *tls.Certificate {
	if s := v.lookup(serverName); s != nil && s.cert != nil {
		return s.cert.get()
	}
	return v.firstCert.get()
}

// noSitePage is the 404 for a Host no site claims, rendered once for both
// engines.
var noSitePage = errorpage.NewPage(http.StatusNotFound, "No site is configured for this host name.")

func (v *vhost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := v.lookup(r.Host)
	if s == nil {
		noSitePage.Write(w, r)
		return
	}
	s.ServeHTTP(w, r)
}

// normalizeHost strips the port and a trailing dot and lowercases, without
// allocating in the common already-clean case.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		if strings.Count(h, ":") == 1 || strings.HasPrefix(h, "[") {
			h = h[:i]
		}
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// redirectHandler answers every request with a redirect. In "to", {uri} is
// replaced by the request's path and query, {path} by the path after the
// route prefix and {query} by the raw query.
type redirectHandler struct {
	to     string
	status int
	prefix string
}

func (h *redirectHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := h.to
	if strings.Contains(target, "{") {
		rest := strings.TrimPrefix(r.URL.EscapedPath(), h.prefix)
		target = strings.NewReplacer("{uri}", r.URL.RequestURI(), "{path}", strings.TrimPrefix(rest, "/"), "{query}", r.URL.RawQuery,
			"{hostname}", requestHostname(r.Host)).Replace(target)
	}
	w.Header().Set("Location", target)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(h.status)
}

// requestHostname is the Host header without its port (an IPv6 literal
// keeps its brackets), for redirect targets.
func requestHostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

// listenURL is the URL printed for a listener.
func listenURL(addr net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String() + "/"
	}
	if host == "::" {
		host = "0.0.0.0"
	}
	if p, _ := strconv.Atoi(port); (p == 80 && !tls) || (p == 443 && tls) {
		return scheme + "://" + formatHost(host) + "/"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

func formatHost(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}
