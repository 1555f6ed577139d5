package cache

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"portico/internal/accessinfo"
)

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
		if e.servesFresh(rcc, age) {
			h.stats.hits.Add(1)
			accessinfo.CacheStatus(w, logHit)
			h.serveEntry(w, r, e, nil, now)
			return
		}
		if serve, refresh := e.servesStale(rcc, age); serve {
			h.stats.hits.Add(1)
			if refresh {
				accessinfo.CacheStatus(w, logUpdating)
			} else {
				accessinfo.CacheStatus(w, logStale)
			}
			h.serveEntry(w, r, e, nil, now)
			if refresh {
				h.refreshInBackground(r, st.withStale(e, storeKey))
			}
			return
		}
		if rcc.onlyIfCached {
			h.gatewayTimeout(w)
			return
		}
		st = st.withStale(e, storeKey)
		if age < e.lifetime && !e.noCache {
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
		accessinfo.CacheStatus(w, logMiss)
		w.Header()["Cache-Status"] = forwarded(fwd)
		h.passThrough(w, r)
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

// fetchState is what a forwarded request knows about the cache.
type fetchState struct {
	key      string       // primary key
	rcc      cacheControl // request directives
	marker   *entry       // the Vary marker at key, if any
	stale    *entry       // the entry being revalidated, if any
	storeKey string       // where stale is stored
	fwd      string       // Cache-Status fwd= value
}

func (st fetchState) withStale(e *entry, storeKey string) fetchState {
	st.stale, st.storeKey, st.fwd = e, storeKey, "stale"
	return st
}

// lookup finds the entry for a request: the primary key's entry, or through
// its Vary marker the variant matching the request.
func (h *Handler) lookup(ctx context.Context, key string, r *http.Request) (e, marker *entry, storeKey, fwd string) {
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

// serveEntry writes a stored entry as answer decides: its header slices
// are assigned, not copied, and nothing is parsed. status is the
// Cache-Status value, nil for a hit.
func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, status []string, now time.Time) {
	a := e.answer(r.Method == http.MethodHead, conditionalOf(r.Header))
	dst := w.Header()
	writeStoredHeader(dst, e, status, now)
	if a.notModified {
		for _, k := range bodyFields() {
			delete(dst, k)
		}
	}
	w.WriteHeader(a.status)
	if a.body {
		w.Write(e.Body)
	}
}

// writeStoredHeader sets a stored entry's header with the hit's Age and
// Cache-Status (status, or the hit's when nil) on dst.
func writeStoredHeader(dst http.Header, e *entry, status []string, now time.Time) {
	hh := e.hitHeaders(now)
	for k, v := range e.Header {
		if !targetedField(k) {
			dst[k] = v
		}
	}
	dst["Age"] = hh.age
	if status == nil {
		status = hh.status
	}
	dst["Cache-Status"] = status
}

func (h *Handler) gatewayTimeout(w http.ResponseWriter) {
	accessinfo.CacheStatus(w, logMiss)
	hd := w.Header()
	hd["Cache-Status"] = []string{cacheStatus{fwd: "miss", detail: "only-if-cached"}.String()}
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusGatewayTimeout)
	w.Write([]byte("504 Gateway Timeout: not in cache (only-if-cached)\n"))
}

// passThrough forwards a request unstored, what is for the cache only
// (tags, targeted fields) stripped.
func (h *Handler) passThrough(w http.ResponseWriter, r *http.Request) {
	h.next.ServeHTTP(&statusWriter{ResponseWriter: w, strip: h.tagHeader}, r)
}

// bypass forwards a request the cache does not handle.
func (h *Handler) bypass(w http.ResponseWriter, r *http.Request) {
	h.stats.bypass.Add(1)
	accessinfo.CacheStatus(w, logBypass)
	w.Header()["Cache-Status"] = forwarded("bypass")
	h.passThrough(w, r)
}

// serveRange answers a Range request from a fresh stored 200 (the range is
// cut by http.ServeContent), else passes it through unstored.
func (h *Handler) serveRange(w http.ResponseWriter, r *http.Request, key string, rcc cacheControl) {
	if e, _, _, _ := h.lookup(r.Context(), key, r); e != nil && e.Status == http.StatusOK {
		now := h.now()
		if e.servesFresh(rcc, e.age(now)) {
			h.stats.hits.Add(1)
			accessinfo.CacheStatus(w, logHit)
			writeStoredHeader(w.Header(), e, nil, now)
			http.ServeContent(w, r, "", e.lastModTime, bytes.NewReader(e.Body))
			return
		}
	}
	h.bypass(w, r)
}
