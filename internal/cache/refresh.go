package cache

import (
	"context"
	"net/http"
	"slices"
	"time"
)

// refreshed builds the entry a 304 refreshes (RFC 9111 section 4.3.4):
// the stored body, the stored header with the 304's fields replacing
// theirs. It returns nil when the 304 names another representation.
func refreshed(old *entry, h304 http.Header, reqTime, respTime time.Time) *entry {
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
	e := &entry{
		Status: old.Status, Header: hdr, Body: old.Body, URL: old.URL,
		VaryNames: old.VaryNames, VaryKey: old.VaryKey,
		RequestTime: reqTime, ResponseTime: respTime, Tags: old.Tags,
	}
	finishEntry(e, h304)
	return e
}

// forward sends one request upstream through a fetchWriter, which streams
// the response to the client while storing it.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, st fetchState, f *flight) {
	h.stats.misses.Add(1)
	fw := &fetchWriter{h: h, client: w, req: r, st: st, f: f, reqTime: h.now(), epoch: h.inv.begin(), hdr: make(http.Header)}
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
func (h *Handler) upstreamRequest(r *http.Request, stale *entry) *http.Request {
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
	fw := &fetchWriter{h: h, req: out, st: st, f: f, reqTime: h.now(), epoch: h.inv.begin(), hdr: make(http.Header)}
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
