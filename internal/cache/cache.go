// Package cache is an RFC 9111 shared HTTP cache, an http.Handler middleware
// in front of a reverse proxy or a WSGI pool.
//
// What it stores (RFC 9111 section 3, as a shared cache):
//   - only responses to GET, with a final status among 200 203 204 300 301
//     308 404 405 410 414 501 (206 and responses to Range requests are never
//     stored; Range requests are answered from a fresh stored 200, else
//     passed through);
//   - only when the response states its freshness (s-maxage, max-age,
//     Expires), says no-cache and has a validator, or earns heuristic
//     freshness (10% of Date - Last-Modified, at most a day, section 4.2.2);
//   - never with no-store (request or response), private, Vary: *, or a
//     Content-Range; never from a request with Authorization unless the
//     response says public, s-maxage or must-revalidate (section 3.5);
//   - a response with Set-Cookie only when it says public, and then the
//     stored copy has no Set-Cookie: the client that caused the fetch gets
//     its cookie, nobody else ever gets it from the cache;
//   - never because of the path or its extension (cache deception): only
//     the response headers decide.
//
// The primary key is method + scheme (from r.TLS) + host (lower-cased,
// default port removed) + escaped path + query, each part optional by
// config; Vary adds a secondary key from the named request fields. GET and
// HEAD share entries (HEAD is answered from a stored GET). Forwarding
// headers are never part of the key: the proxy sets them after the cache,
// so a client's X-Forwarded-Host cannot reach a stored page.
//
// Every response of a cached route carries Cache-Status (RFC 9211), e.g.
// "portico; hit; ttl=42", "portico; fwd=uri-miss; stored",
// "portico; fwd=stale; fwd-status=304", "portico; fwd=bypass",
// "portico; fwd=uri-miss; collapsed" (a waiter answered by another
// request's fetch). A negative ttl on a hit means stale content was served
// (max-stale or stale-while-revalidate).
//
// Serving: a stale entry is revalidated with the stored ETag /
// Last-Modified (the client's own validators are not forwarded; the cache
// answers them itself, 304 included); a 304 refreshes the stored header
// (RFC 9111 section 4.3.4). no-cache entries are revalidated every time;
// must-revalidate, proxy-revalidate and s-maxage forbid serving stale.
// stale-while-revalidate serves stale and refreshes with one background
// request; stale-if-error (response or request) answers 500/502/503/504
// with the stale entry. A request's no-cache, Pragma: no-cache or max-age
// forces revalidation unless ignore_client_no_cache (which ignores both
// no-cache and max-age, as nginx does); only-if-cached gets 504 on a miss.
// Unsafe methods with a 2xx/3xx answer invalidate the target URI and the
// same-origin Location / Content-Location (section 4.4). Concurrent misses
// of one key are collapsed into one upstream request; if its response is
// not storable the waiters are released at once and go upstream themselves
// (nginx proxy_cache_lock). 1xx interim responses are not relayed on
// cached routes. Qualified no-cache="f" and private="f" are treated as
// their unqualified (stricter) forms.
package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portico/internal/config"
)

// Defaults, also filled in by the config loader.
const (
	DefaultMaxSize       = 256 << 20
	DefaultMaxObjectSize = 8 << 20
)

const (
	// statusName is the cache's name in Cache-Status.
	statusName = "portico"
	// lockTimeout bounds how long a collapsed request waits for the one
	// fetching its key before going upstream itself (nginx proxy_cache_lock_timeout).
	lockTimeout = 5 * time.Second
	// revalidateKeep and maxKeep bound how long an entry is kept past its
	// freshness (see finishEntry).
	revalidateKeep = 10 * time.Minute
	maxKeep        = 24 * time.Hour
	// backgroundTimeout bounds a stale-while-revalidate refresh.
	backgroundTimeout = 60 * time.Second
)

// Options are the dependencies of a cache handler.
type Options struct {
	Logger *slog.Logger
	// Name identifies the cache (site and route) in logs and metrics, and
	// namespaces its Redis keys: processes sharing entries must use the same.
	Name string
}

// Handler answers from the cache or forwards to next.
type Handler struct {
	next        http.Handler
	log         *slog.Logger
	name        string
	store       store
	maxObject   int64
	key         keyParts
	ignoreNoCCh bool // ignore_client_no_cache

	mu      sync.Mutex
	flights map[string]*flight
	closed  bool // set by Close: no more background refreshes

	stats stats

	bg          sync.WaitGroup
	now         func() time.Time
	lockTimeout time.Duration
}

var _ http.Handler = (*Handler)(nil)

type keyParts struct{ method, scheme, host, path, query bool }

// New validates cfg and builds a cache in front of next.
func New(cfg config.Cache, next http.Handler, opts Options) (*Handler, error) {
	if next == nil {
		return nil, errors.New("no handler to cache")
	}
	if cfg.MaxSize < 0 {
		return nil, fmt.Errorf("max_size %d: must not be negative", cfg.MaxSize)
	}
	if cfg.MaxObjectSize < 0 {
		return nil, fmt.Errorf("max_object_size %d: must not be negative", cfg.MaxObjectSize)
	}
	maxSize, maxObject := int64(cfg.MaxSize), int64(cfg.MaxObjectSize)
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	if maxObject == 0 {
		maxObject = min(DefaultMaxObjectSize, maxSize)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := opts.Name
	if name == "" {
		name = "default"
	}
	kp, err := parseKeyParts(cfg.Key)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		next:        next,
		log:         log.With("cache", name),
		name:        name,
		maxObject:   maxObject,
		key:         kp,
		ignoreNoCCh: cfg.IgnoreClientNoCache,
		flights:     make(map[string]*flight),
		now:         time.Now,
		lockTimeout: lockTimeout,
	}
	switch s := cfg.Store; {
	case s == "" || s == "memory":
		if maxObject > maxSize {
			return nil, fmt.Errorf("max_object_size %d is larger than max_size %d", maxObject, maxSize)
		}
		h.store = newMemoryStore(maxSize)
	case strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://"):
		opt, err := parseRedisURL(s)
		if err != nil {
			return nil, err
		}
		h.store = newRedisStore(opt, name, h.log)
	default:
		return nil, fmt.Errorf("store %q: want \"memory\" or \"redis://host:port/db\"", s)
	}
	return h, nil
}

func parseKeyParts(parts []string) (keyParts, error) {
	if len(parts) == 0 {
		return keyParts{true, true, true, true, true}, nil
	}
	var kp keyParts
	seen := map[string]bool{}
	for _, p := range parts {
		if seen[p] {
			return kp, fmt.Errorf("key: %q listed twice", p)
		}
		seen[p] = true
		switch p {
		case "method":
			kp.method = true
		case "scheme":
			kp.scheme = true
		case "host":
			kp.host = true
		case "path":
			kp.path = true
		case "query":
			kp.query = true
		default:
			return kp, fmt.Errorf("key: unknown part %q (want method, scheme, host, path, query)", p)
		}
	}
	if !kp.path {
		return kp, errors.New("key: must include \"path\" (else one response would answer every URL)")
	}
	return kp, nil
}

// ServeHTTP answers from the cache or forwards to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions, http.MethodTrace, http.MethodConnect:
		h.bypass(w, r)
		return
	default:
		h.serveUnsafe(w, r)
		return
	}
	if r.Header["Upgrade"] != nil {
		h.bypass(w, r)
		return
	}
	rcc := h.requestCacheControl(r)
	key := h.primaryKey(r)
	ctx := r.Context()

	if r.Header["Range"] != nil {
		h.serveRange(w, r, key, rcc)
		return
	}

	e, marker, storeKey, fwd := h.lookup(ctx, key, r)
	st := fetchState{rcc: rcc, marker: marker, fwd: fwd, key: key}
	now := h.now()
	if e != nil {
		age := e.age(now)
		fresh := age < e.lifetime
		if fresh && !e.noCache && acceptable(rcc, e, age) {
			h.stats.hits.Add(1)
			h.serveEntry(w, r, e, nil, now)
			return
		}
		staleFor := age - e.lifetime
		if !fresh && !e.noCache && !e.mustRevalidate && !rcc.noCache && rcc.maxAge < 0 {
			// The client accepts stale (max-stale), or the response allows
			// serving stale while one background fetch refreshes it.
			if rcc.maxStaleAny || (rcc.maxStale >= 0 && staleFor <= time.Duration(rcc.maxStale)*time.Second) {
				h.stats.hits.Add(1)
				h.serveEntry(w, r, e, nil, now)
				return
			}
			if e.swr > 0 && staleFor <= e.swr {
				h.stats.hits.Add(1)
				h.serveEntry(w, r, e, nil, now)
				h.refreshInBackground(r, st.withStale(e, storeKey))
				return
			}
		}
		if rcc.onlyIfCached {
			h.gatewayTimeout(w)
			return
		}
		st = st.withStale(e, storeKey)
		if fresh && !e.noCache {
			st.fwd = "request" // the client's directives forced revalidation
		}
		h.fetch(w, r, st)
		return
	}
	if rcc.onlyIfCached {
		h.gatewayTimeout(w)
		return
	}
	if r.Method == http.MethodHead {
		// Not stored; a later GET fills the cache.
		h.stats.misses.Add(1)
		w.Header()["Cache-Status"] = []string{statusName + "; fwd=" + fwd}
		h.next.ServeHTTP(w, r)
		return
	}
	h.fetch(w, r, st)
}

// requestCacheControl parses the request's Cache-Control (and Pragma when
// Cache-Control is absent, RFC 9111 section 5.4), less what
// ignore_client_no_cache says to ignore: no-cache and max-age.
func (h *Handler) requestCacheControl(r *http.Request) cacheControl {
	ccl := r.Header["Cache-Control"]
	rcc := parseCacheControl(ccl)
	if len(ccl) == 0 {
		for _, p := range r.Header["Pragma"] {
			if strings.Contains(asciiLower(p), "no-cache") {
				rcc.noCache = true
			}
		}
	}
	if rcc.maxAgeInvalid {
		rcc.maxAge = -1 // an unreadable request max-age is ignored
	}
	if h.ignoreNoCCh {
		rcc.noCache = false
		rcc.maxAge = -1
	}
	return rcc
}

// acceptable applies the request's max-age and min-fresh to a fresh entry.
func acceptable(rcc cacheControl, e *Entry, age time.Duration) bool {
	if rcc.noCache {
		return false
	}
	if rcc.maxAge >= 0 && age > time.Duration(rcc.maxAge)*time.Second {
		return false
	}
	if rcc.minFresh >= 0 && e.lifetime-age < time.Duration(rcc.minFresh)*time.Second {
		return false
	}
	return true
}

// fetchState is what a forwarded request knows about the cache.
type fetchState struct {
	key      string       // primary key
	rcc      cacheControl // request directives
	marker   *Entry       // the Vary marker at key, if any
	stale    *Entry       // the entry being revalidated, if any
	storeKey string       // where stale is stored
	fwd      string       // Cache-Status fwd= value
}

func (st fetchState) withStale(e *Entry, storeKey string) fetchState {
	st.stale, st.storeKey, st.fwd = e, storeKey, "stale"
	return st
}

// lookup finds the entry for a request: the primary key's entry, or through
// its Vary marker the variant matching the request.
func (h *Handler) lookup(ctx context.Context, key string, r *http.Request) (e, marker *Entry, storeKey, fwd string) {
	e = h.store.Get(ctx, key)
	if e == nil {
		return nil, nil, "", "uri-miss"
	}
	if !e.isMarker() {
		return e, nil, key, ""
	}
	marker = e
	sk := variantKey(key, marker.MarkerID, secondaryKey(r.Header, marker.VaryNames))
	if v := h.store.Get(ctx, sk); v != nil && !v.isMarker() {
		return v, marker, sk, ""
	}
	return nil, marker, "", "vary-miss"
}

// serveEntry writes a stored entry: its header slices are assigned, not
// copied, and nothing is parsed. status is the Cache-Status value, nil for
// a hit. A client's If-None-Match / If-Modified-Since is answered with 304.
func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, e *Entry, status []string, now time.Time) {
	hh := e.hitHeaders(now, statusName)
	dst := w.Header()
	for k, v := range e.Header {
		dst[k] = v
	}
	dst["Age"] = hh.age
	if status == nil {
		status = hh.status
	}
	dst["Cache-Status"] = status
	if e.Status == http.StatusOK && notModified(r, e) {
		delete(dst, "Content-Length")
		delete(dst, "Content-Type")
		delete(dst, "Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead && len(e.Body) > 0 {
		w.Write(e.Body)
	}
}

// notModified evaluates a client's conditional GET against a stored entry
// (RFC 9110 section 13.2.2: If-None-Match wins over If-Modified-Since).
func notModified(r *http.Request, e *Entry) bool {
	if inm := r.Header["If-None-Match"]; inm != nil {
		return e.etag != "" && etagListMatches(inm, e.etag)
	}
	if ims := r.Header["If-Modified-Since"]; len(ims) > 0 && !e.lastModTime.IsZero() {
		t, err := http.ParseTime(ims[0])
		return err == nil && !e.lastModTime.After(t)
	}
	return false
}

// etagListMatches is the weak comparison of If-None-Match (RFC 9110 8.8.3.2).
func etagListMatches(lines []string, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for _, line := range lines {
		for _, t := range strings.Split(line, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == want {
				return true
			}
		}
	}
	return false
}

func (h *Handler) gatewayTimeout(w http.ResponseWriter) {
	hd := w.Header()
	hd["Cache-Status"] = []string{statusName + "; fwd=miss; detail=only-if-cached"}
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusGatewayTimeout)
	w.Write([]byte("504 Gateway Timeout: not in cache (only-if-cached)\n"))
}

// bypass forwards a request the cache does not handle.
func (h *Handler) bypass(w http.ResponseWriter, r *http.Request) {
	h.stats.bypass.Add(1)
	w.Header()["Cache-Status"] = []string{statusName + "; fwd=bypass"}
	h.next.ServeHTTP(w, r)
}

// serveRange answers a Range request from a fresh stored 200 (the range is
// cut by http.ServeContent), else passes it through unstored.
func (h *Handler) serveRange(w http.ResponseWriter, r *http.Request, key string, rcc cacheControl) {
	if e, _, _, _ := h.lookup(r.Context(), key, r); e != nil && e.Status == http.StatusOK {
		now := h.now()
		age := e.age(now)
		if age < e.lifetime && !e.noCache && acceptable(rcc, e, age) {
			h.stats.hits.Add(1)
			hh := e.hitHeaders(now, statusName)
			dst := w.Header()
			for k, v := range e.Header {
				dst[k] = v
			}
			dst["Age"] = hh.age
			dst["Cache-Status"] = hh.status
			http.ServeContent(w, r, "", e.lastModTime, bytes.NewReader(e.Body))
			return
		}
	}
	h.bypass(w, r)
}

// serveUnsafe forwards an unsafe request and, when it succeeded,
// invalidates the target URI and the URIs in Location and Content-Location
// of the same origin (RFC 9111 section 4.4).
func (h *Handler) serveUnsafe(w http.ResponseWriter, r *http.Request) {
	h.stats.bypass.Add(1)
	w.Header()["Cache-Status"] = []string{statusName + "; fwd=bypass"}
	sw := &statusWriter{ResponseWriter: w}
	h.next.ServeHTTP(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if sw.status < 200 || sw.status >= 400 {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	h.store.Delete(ctx, h.primaryKey(r))
	base := &url.URL{Scheme: schemeOf(r), Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	for _, f := range []string{"Location", "Content-Location"} {
		v := w.Header().Get(f)
		if v == "" {
			continue
		}
		u, err := base.Parse(v)
		if err != nil || u.Scheme != base.Scheme || normHost(u.Host, u.Scheme) != normHost(r.Host, base.Scheme) {
			continue // another origin: not ours to invalidate
		}
		h.store.Delete(ctx, h.keyFor(u.Scheme, u.Host, u.EscapedPath(), u.RawQuery))
	}
}

// Purge removes the entry for an absolute URL (all its Vary variants), or
// every entry whose URL starts with it when prefix is true. A URL that is
// only a path ("/api/") matches that path on every host. It returns how
// many stored objects were removed (Vary markers and variants count).
func (h *Handler) Purge(ctx context.Context, rawURL string, prefix bool) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("cache purge: %w", err)
	}
	path := u.EscapedPath()
	if u.Host == "" {
		if !strings.HasPrefix(path, "/") {
			return 0, fmt.Errorf("cache purge: %q: want an absolute URL or a path", rawURL)
		}
		want := path
		if !prefix || u.RawQuery != "" {
			want += "?" + u.RawQuery
		}
		return h.store.Purge(ctx, "", func(k string) bool {
			rest := k
			if i := strings.Index(rest, "://"); i >= 0 {
				rest = rest[i+3:]
			}
			if i := strings.IndexAny(rest, "/?"); i >= 0 {
				rest = rest[i:]
			}
			if prefix {
				return strings.HasPrefix(rest, want)
			}
			return rest == want || strings.HasPrefix(rest, want+"\x00")
		})
	}
	scheme := u.Scheme
	if scheme == "" {
		scheme = "http"
	}
	if prefix {
		k := h.keyFor(scheme, u.Host, path, "")
		k = strings.TrimSuffix(k, "?")
		if u.RawQuery != "" && h.key.query {
			k += "?" + u.RawQuery
		}
		return h.store.Purge(ctx, k, func(string) bool { return true })
	}
	if path == "" {
		path = "/"
	}
	k := h.keyFor(scheme, u.Host, path, u.RawQuery)
	return h.store.Purge(ctx, k, func(s string) bool {
		return s == k || strings.HasPrefix(s, k+"\x00")
	})
}

// Stats are counters of a cache since New, for metrics.
type Stats struct {
	Hits    int64 // answered from the store (fresh, allowed stale, or a collapsed fetch)
	Misses  int64 // forwarded upstream (misses and revalidations)
	Bypass  int64 // not handled (unsafe methods, Range misses, upgrades)
	Stored  int64 // responses stored
	Entries int64 // objects held (memory store; -1 for redis)
	Bytes   int64 // bytes held (memory store; -1 for redis)
}

type stats struct{ hits, misses, bypass, stored atomic.Int64 }

// Stats returns the cache's counters.
func (h *Handler) Stats() Stats {
	s := Stats{
		Hits: h.stats.hits.Load(), Misses: h.stats.misses.Load(),
		Bypass: h.stats.bypass.Load(), Stored: h.stats.stored.Load(),
		Entries: -1, Bytes: -1,
	}
	if m, ok := h.store.(*memoryStore); ok {
		n, b := m.stats()
		s.Entries, s.Bytes = int64(n), b
	}
	return s
}

// Close waits for background refreshes (bounded by ctx) and releases the store.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return h.store.Close(ctx)
}

// ---- keys

func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func (h *Handler) primaryKey(r *http.Request) string {
	return h.keyFor(schemeOf(r), r.Host, r.URL.EscapedPath(), r.URL.RawQuery)
}

// keyFor builds "METHOD scheme://host/path?query" with the parts the
// config leaves out empty. GET and HEAD share the key "GET".
func (h *Handler) keyFor(scheme, host, path, query string) string {
	kp := h.key
	if kp.host {
		host = normHost(host, scheme)
	}
	var b strings.Builder
	b.Grow(12 + len(host) + len(path) + len(query))
	if kp.method {
		b.WriteString("GET")
	}
	b.WriteByte(' ')
	if kp.scheme {
		b.WriteString(scheme)
	}
	b.WriteString("://")
	if kp.host {
		b.WriteString(host)
	}
	if kp.path {
		b.WriteString(path)
	}
	b.WriteByte('?')
	if kp.query {
		b.WriteString(query)
	}
	return b.String()
}

// normHost lower-cases a host and drops the scheme's default port, so
// "Example.TEST:80" and "example.test" share entries.
func normHost(host, scheme string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		port := host[i+1:]
		if port == "" || (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			host = host[:i]
		}
	}
	host = asciiLower(host)
	return strings.TrimSuffix(host, ".")
}

// secondaryKey is the Vary part of a key: the request's values of the
// named fields, each value trimmed (RFC 9111 section 4.1 normalisation).
func secondaryKey(h http.Header, names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('=')
		for i, v := range h[n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.TrimSpace(v))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func variantKey(primary, id, secondary string) string {
	return primary + "\x00" + id + "\x00" + secondary
}

// varyNames parses Vary into sorted canonical names; star reports "*".
func varyNames(h http.Header) (names []string, star bool) {
	for _, line := range h["Vary"] {
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f == "*" {
				return nil, true
			}
			f = http.CanonicalHeaderKey(f)
			if !slices.Contains(names, f) {
				names = append(names, f)
			}
		}
	}
	slices.Sort(names)
	return names, false
}

func newMarkerID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- storing

// storable decides whether a response may be stored (RFC 9111 section 3
// for a shared cache, plus portico's Set-Cookie rule).
func (h *Handler) storable(r *http.Request, rcc cacheControl, code int, hdr http.Header, now time.Time) bool {
	if r.Method != http.MethodGet || !heuristicStatus(code) || rcc.noStore {
		return false
	}
	cc := parseCacheControl(hdr["Cache-Control"])
	if cc.noStore || cc.private {
		return false
	}
	if r.Header["Authorization"] != nil && !cc.public && cc.sMaxAge < 0 && !cc.sMaxAgeInvalid && !cc.mustRevalidate {
		return false
	}
	if (hdr["Set-Cookie"] != nil || hdr["Set-Cookie2"] != nil) && !cc.public {
		return false
	}
	if _, star := varyNames(hdr); star {
		return false
	}
	if hdr["Content-Range"] != nil {
		return false
	}
	validator := hdr.Get("Etag") != "" || hdr.Get("Last-Modified") != ""
	if cc.noCache {
		return validator
	}
	lifetime := freshnessLifetime(cc, hdr, now)
	if !hasExplicitFreshness(cc, hdr) && lifetime == 0 {
		return false
	}
	return lifetime > 0 || validator
}

// excludedHeader lists fields never stored or refreshed from a 304.
func excludedHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding",
		"Upgrade", "Proxy-Authenticate", "Proxy-Authorization",
		"Set-Cookie", "Set-Cookie2", "Age", "Cache-Status", "Content-Length":
		return true
	}
	return strings.HasPrefix(k, http.TrailerPrefix)
}

// storedHeader copies a response header for storage: excluded fields and
// those named by Connection dropped, slices clipped.
func storedHeader(src http.Header) http.Header {
	conn := src["Connection"]
	dst := make(http.Header, len(src)+2)
	for k, v := range src {
		if excludedHeader(k) || len(v) == 0 {
			continue
		}
		if conn != nil && connectionListed(conn, k) {
			continue
		}
		dst[k] = slices.Clip(slices.Clone(v))
	}
	return dst
}

func connectionListed(conn []string, k string) bool {
	for _, line := range conn {
		for _, f := range strings.Split(line, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(f)) == k {
				return true
			}
		}
	}
	return false
}

// finishEntry fills the derived and fixed parts of an entry about to be stored.
func finishEntry(e *Entry, rawHdr http.Header) {
	e.InitialAge = initialAge(rawHdr, e.RequestTime, e.ResponseTime)
	if e.Header["Date"] == nil {
		e.Header["Date"] = []string{e.ResponseTime.UTC().Format(http.TimeFormat)}
	}
	if bodyAllowed(e.Status) {
		e.Header["Content-Length"] = []string{strconv.Itoa(len(e.Body))}
	}
	e.prepare()
	// Kept past freshness for the stale windows, max-stale requests and
	// revalidation: as long as it was fresh, at least revalidateKeep, at
	// most maxKeep (LRU eviction bounds memory before that).
	keep := max(e.swr, e.sie, min(max(e.lifetime, revalidateKeep), maxKeep))
	e.Expires = e.ResponseTime.Add(e.lifetime - e.InitialAge + keep)
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// put stores an entry at its key, through a Vary marker when it varies.
func (h *Handler) put(ctx context.Context, r *http.Request, st fetchState, e *Entry, names []string) {
	h.stats.stored.Add(1)
	ctx = context.WithoutCancel(ctx)
	if len(names) == 0 {
		h.store.Set(ctx, st.key, e)
		return
	}
	marker := st.marker
	if marker == nil || !slices.Equal(marker.VaryNames, names) {
		marker = &Entry{URL: e.URL, VaryNames: names, MarkerID: newMarkerID()}
	} else if e.Expires.After(marker.Expires) {
		// Stored markers are shared: extend a copy.
		marker = &Entry{URL: marker.URL, VaryNames: marker.VaryNames, MarkerID: marker.MarkerID}
	}
	if e.Expires.After(marker.Expires) {
		marker.Expires = e.Expires
	}
	e.VaryNames = names
	e.VaryKey = secondaryKey(r.Header, names)
	h.store.Set(ctx, variantKey(st.key, marker.MarkerID, e.VaryKey), e)
	h.store.Set(ctx, st.key, marker)
}

// refreshed builds the entry a 304 refreshes (RFC 9111 section 4.3.4):
// the stored body, the stored header with the 304's fields replacing
// theirs. It returns nil when the 304 names another representation.
func refreshed(old *Entry, h304 http.Header, reqTime, respTime time.Time) *Entry {
	if et := h304.Get("Etag"); et != "" && old.etag != "" && et != old.etag {
		return nil
	}
	hdr := make(http.Header, len(old.Header)+2)
	for k, v := range old.Header {
		hdr[k] = v
	}
	for k, v := range h304 {
		if excludedHeader(k) || len(v) == 0 {
			continue
		}
		hdr[k] = slices.Clip(slices.Clone(v))
	}
	delete(hdr, "Content-Length")
	e := &Entry{
		Status: old.Status, Header: hdr, Body: old.Body, URL: old.URL,
		VaryNames: old.VaryNames, VaryKey: old.VaryKey,
		RequestTime: reqTime, ResponseTime: respTime,
	}
	finishEntry(e, h304)
	return e
}

// ---- collapsing

// flight is one upstream fetch that requests for the same key wait on.
type flight struct {
	done  chan struct{}
	once  sync.Once
	entry *Entry // the stored result, set before done closes; nil: go upstream
}

// join returns the flight for key, and whether the caller leads it.
func (h *Handler) join(key string) (*flight, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.flights[key]; f != nil {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	h.flights[key] = f
	return f, true
}

// release ends a flight (once): waiters get e, or go upstream when nil.
func (h *Handler) release(key string, f *flight, e *Entry) {
	f.once.Do(func() {
		h.mu.Lock()
		if h.flights[key] == f {
			delete(h.flights, key)
		}
		h.mu.Unlock()
		f.entry = e
		close(f.done)
	})
}

// fetch forwards a request, collapsed with other requests for its key.
func (h *Handler) fetch(w http.ResponseWriter, r *http.Request, st fetchState) {
	f, leader := h.join(st.key)
	if leader {
		h.forward(w, r, st, f)
		return
	}
	t := time.NewTimer(h.lockTimeout)
	select {
	case <-f.done:
		t.Stop()
	case <-t.C:
		h.forward(w, r, st, nil)
		return
	case <-r.Context().Done():
		t.Stop()
		return
	}
	if e := f.entry; e != nil && (len(e.VaryNames) == 0 || secondaryKey(r.Header, e.VaryNames) == e.VaryKey) {
		h.stats.hits.Add(1)
		h.serveEntry(w, r, e, []string{statusName + "; fwd=" + st.fwd + "; collapsed"}, h.now())
		return
	}
	// The leader's response was not shareable: go upstream ourselves
	// (nginx proxy_cache_lock semantics).
	h.forward(w, r, st, nil)
}

// forward sends one request upstream through a fetchWriter, which streams
// the response to the client while storing it.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, st fetchState, f *flight) {
	h.stats.misses.Add(1)
	fw := &fetchWriter{h: h, client: w, req: r, st: st, f: f, reqTime: h.now(), hdr: make(http.Header)}
	defer func() {
		if p := recover(); p != nil {
			fw.abort()
			panic(p)
		}
	}()
	h.next.ServeHTTP(fw, h.upstreamRequest(r, st.stale))
	fw.finish()
	if fw.retry {
		// The 304 named another representation than the stored one: fetch
		// it whole. (Only once: st.stale is gone now.)
		st.stale, st.fwd = nil, "miss"
		h.store.Delete(context.WithoutCancel(r.Context()), st.storeKey)
		h.forward(w, r, st, nil)
	}
}

// upstreamRequest is the request sent upstream: for GET (and HEAD
// revalidating a stored GET) the client's own
// validators are dropped (the cache wants a whole response it can store,
// and answers the client's conditionals itself) and the stored entry's
// validators are sent instead when revalidating.
func (h *Handler) upstreamRequest(r *http.Request, stale *Entry) *http.Request {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return r
	}
	hasClientCond := r.Header["If-None-Match"] != nil || r.Header["If-Modified-Since"] != nil
	if !hasClientCond && (stale == nil || !stale.hasValidator()) {
		return r
	}
	out := r.Clone(r.Context())
	delete(out.Header, "If-None-Match")
	delete(out.Header, "If-Modified-Since")
	if stale != nil {
		if stale.etag != "" {
			out.Header["If-None-Match"] = []string{stale.etag}
		}
		if stale.lastMod != "" {
			out.Header["If-Modified-Since"] = []string{stale.lastMod}
		}
	}
	return out
}

// refreshInBackground revalidates a stale entry with one background
// request (stale-while-revalidate, RFC 5861), unless one is under way.
func (h *Handler) refreshInBackground(r *http.Request, st fetchState) {
	h.mu.Lock()
	if h.closed || h.flights[st.key] != nil {
		h.mu.Unlock()
		return
	}
	f := &flight{done: make(chan struct{})}
	h.flights[st.key] = f
	h.bg.Add(1) // under mu, so never concurrent with Close's Wait
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), backgroundTimeout)
	out := r.Clone(ctx)
	out.Method = http.MethodGet
	out.Body = http.NoBody
	out.ContentLength = 0
	delete(out.Header, "Range")
	delete(out.Header, "If-Range")
	out = h.upstreamRequest(out, st.stale)
	fw := &fetchWriter{h: h, req: out, st: st, f: f, reqTime: h.now(), hdr: make(http.Header)}
	go func() {
		defer h.bg.Done()
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				fw.abort()
				if p != http.ErrAbortHandler {
					h.log.Error("cache: background refresh panicked", "url", st.stale.URL, "panic", p)
				}
			}
		}()
		h.next.ServeHTTP(fw, out)
		fw.finish()
	}()
}
