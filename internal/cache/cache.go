// Package cache is an RFC 9111 shared HTTP cache, an http.Handler middleware
// in front of a reverse proxy or a WSGI pool.
//
// What it stores (RFC 9111 section 3, as a shared cache):
//   - only responses to GET with a final status: any status but 206 and
//     304 when the response states its freshness (s-maxage, max-age,
//     Expires) or says public; the statuses cacheable by default (200 203
//     204 300 301 308 404 405 410 414 501) also when they say no-cache and
//     have a validator, or earn heuristic freshness (10% of Date -
//     Last-Modified, at most a day, section 4.2.2; public allows it for any
//     status). 206 and responses to Range requests are never stored; Range
//     requests are answered from a fresh stored 200, else passed through.
//     must-understand (section 5.2.2.3) makes no-store ignored for the
//     statuses RFC 9110 defines, and the response unstorable otherwise;
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
// (nginx proxy_cache_lock). 1xx interim responses (103 Early Hints) are
// relayed to the client and never stored. Qualified no-cache="f" and private="f" are treated as
// their unqualified (stricter) forms.
//
// Where each rule lives (one owner, used by both engines: ServeHTTP for
// net/http and ServeFast for the fast path):
//   - decide.go: the decision core: freshness (servesFresh, servesStale,
//     staleIfError) and the answer of a stored entry, 304 included
//     (conditional, entry.answer, bodyFields);
//   - cachestatus.go: the rendering of Cache-Status (cacheStatus);
//   - key.go: primary and secondary (Vary) keys (appendKey,
//     appendSecondaryKey), built into a stack buffer by the fast path;
//   - storable.go: what may be stored and how (storable, storedHeader,
//     finishEntry, put);
//   - collapse.go: one upstream fetch per key (flight, fetch);
//   - refresh.go: forwarding and revalidation (forward, upstreamRequest,
//     refreshed, refreshInBackground);
//   - purge.go: invalidation by unsafe methods and Purge;
//   - serve.go and writer.go render the net/http answers, fast.go the
//     fast path's.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portico/internal/config"
)

const (
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
	key         config.CacheKey
	ignoreNoCCh bool   // ignore_client_no_cache
	tagHeader   string // tag_header, canonical; "" when off

	inv *invalidations // stamps of unsafe-method invalidations and purges

	mu      sync.Mutex
	flights map[string]*flight
	closed  bool // set by Close: no more background refreshes

	stats stats

	bg          sync.WaitGroup
	now         func() time.Time
	lockTimeout time.Duration
}

var _ http.Handler = (*Handler)(nil)

// New builds a cache in front of next. cfg comes with its defaults
// filled (config.Load does it; a config built in Go calls
// cfg.SetDefaults): New re-defaults nothing, and refuses unset sizes,
// store or key.
func New(cfg config.Cache, next http.Handler, opts Options) (*Handler, error) {
	if next == nil {
		return nil, errors.New("no handler to cache")
	}
	if cfg.MaxSize <= 0 {
		return nil, fmt.Errorf("max_size %d: must be positive (unset: config.Cache.SetDefaults fills it)", cfg.MaxSize)
	}
	if cfg.MaxObjectSize <= 0 {
		return nil, fmt.Errorf("max_object_size %d: must be positive (unset: config.Cache.SetDefaults fills it)", cfg.MaxObjectSize)
	}
	maxSize, maxObject := int64(cfg.MaxSize), int64(cfg.MaxObjectSize)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := opts.Name
	if name == "" {
		name = "default"
	}
	kp, err := config.ParseCacheKey(cfg.Key)
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
		tagHeader:   canonicalOrEmpty(cfg.TagHeader),
		flights:     make(map[string]*flight),
		inv:         newInvalidations(),
		now:         time.Now,
		lockTimeout: lockTimeout,
	}
	switch s := cfg.Store; {
	case s == "memory":
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
		return nil, fmt.Errorf("store %q: want \"memory\" or \"redis://host:port/db\" (unset: config.Cache.SetDefaults fills it)", s)
	}
	return h, nil
}

func canonicalOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return http.CanonicalHeaderKey(s)
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
