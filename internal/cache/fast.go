package cache

// The fast path: *Handler as a fastpath.Handler. A fresh hit in the
// memory store, for a plain GET or HEAD, is answered by portico's fast
// path (package fastpath) without net/http; everything else is declined
// before anything is written, and net/http's path (ServeHTTP) answers it.
//
// What is served: a fresh, not no-cache entry (directly or through its
// Vary marker) of the memory store, found with the key ServeHTTP builds
// (scheme "http": the fast path is plain HTTP only), with the stored
// status, header, Age, Cache-Status ("portico; hit; ttl=N"),
// Content-Length and body (none for HEAD); a client's If-None-Match /
// If-Modified-Since answered 304 as serveEntry does. The hit is counted.
//
// What is declined: a Redis store; a miss, a Vary miss, a stale or
// no-cache entry, an entry without a valid max-age (see Date below);
// requests with Cache-Control, Pragma, Authorization,
// Range, If-Range, If-Match or If-Unmodified-Since (even empty); a path
// with bytes net/url would re-escape (the key would differ); a stored
// header net/http would rewrite (CR, LF or surrounding blanks in a value,
// a name that is not a token); a body net/http would sniff a Content-Type
// for; a 304 when the site's headers hold a field net/http deletes from
// a 304.
//
// Known difference from the net/http path: the response's Date is the
// engine's (now), not the stored one (as nginx's proxy_cache does, and
// as the proxy's fast path does for an upstream's Date). Age is the same,
// so a downstream cache computes the same current age, and since only
// entries with max-age are served here, the same freshness lifetime.

import (
	"net/http"
	"strings"

	"portico/internal/fastpath"
)

var _ fastpath.Handler = (*Handler)(nil)

// ServeFast answers a fresh memory-store hit, or returns false without
// writing anything.
func (h *Handler) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	return h.serveFast(req, w, w.RawHeader())
}

// serveFast is ServeFast with the request's raw header lines given (tests
// and benchmarks use a fastpath.Recorder, which has none).
func (h *Handler) serveFast(req *fastpath.Request, w *fastpath.ResponseWriter, raw []byte) bool {
	ms, ok := h.store.(*memoryStore)
	if !ok || raw == nil {
		return false
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	if req.Authorization != "" || req.Range != "" || req.IfRange != "" || req.IfMatch != "" || req.IfUnmodifiedSince != "" {
		return false
	}
	hasINM, hasIMS, ok := scanRequestHeader(raw)
	if !ok {
		return false
	}
	if !identityPath(req.RawPath) {
		return false
	}

	var kb [keyBuf]byte
	key := h.appendKey(kb[:0], "http", req.Host, req.RawPath, req.Query)
	e := ms.getBytes(key)
	if e == nil {
		return false
	}
	if e.isMarker() {
		for _, n := range e.VaryNames {
			if n == "Host" {
				return false // not in net/http's r.Header
			}
		}
		var vb [keyBuf]byte
		vk := appendVariantPrefix(vb[:0], key, e.MarkerID)
		vk = appendSecondaryKey(vk, e.VaryNames, nil, raw)
		if e = ms.getBytes(vk); e == nil || e.isMarker() {
			return false
		}
	}
	now := h.now()
	if !e.servesFresh(noRequestDirectives(), e.age(now)) {
		return false // stale or always revalidated: net/http's path
	}

	// The engine writes its own Date (now), not the stored one. Harmless
	// to a downstream cache when the response states max-age (its Age is
	// ours, so its current age is the same), but with only Expires or a
	// heuristic (Last-Modified) the lifetime a downstream cache computes
	// depends on Date: leave those to net/http, which sends the stored Date.
	if !e.statesMaxAge {
		return false
	}

	cond := conditional{hasINM: hasINM, inm: []string{req.IfNoneMatch}}
	if hasIMS {
		cond.ims = req.IfModifiedSince
	}
	a := e.answer(req.Method == http.MethodHead, cond)
	if !fastHeaderOK(e.Header) {
		return false
	}
	defs := w.DefaultHeaders()
	if a.notModified || !bodyAllowed(e.Status) {
		// net/http drops these from a 304 (and framing from a 204), the
		// site's values included.
		for _, kv := range defs {
			switch kv[0] {
			case "Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding":
				return false
			}
		}
	} else if a.body && needsSniff(e.Header, defs) {
		return false // net/http would add a sniffed Content-Type
	}

	h.stats.hits.Add(1)
	w.ReportCacheStatus(logHit)
	hh := e.hitHeaders(now)
	w.WriteHeader(a.status)
	for k, vs := range e.Header {
		if k == "Age" || k == "Cache-Status" || k == "Date" || targetedField(k) {
			continue // Age and Cache-Status replaced below, as serveEntry does; Date is the engine's
		}
		if a.notModified && droppedOn304(k) {
			continue
		}
		for _, v := range vs {
			w.AddHeader(k, v)
		}
	}
	w.AddHeader("Age", hh.age[0])
	w.AddHeader("Cache-Status", hh.status[0])
	if a.body {
		w.Write(e.Body)
	}
	return true
}

// identityPath reports whether url.URL.EscapedPath of a request whose raw
// path is p returns p itself: every byte is one net/url keeps as it is in
// an escaped path (validEncoded), or a %XX escape (which the engine has
// already checked).
func identityPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			switch c {
			case '-', '_', '.', '~', '/', '%',
				'!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '[', ']':
			default:
				return false
			}
		}
	}
	return true
}

// scanRequestHeader walks the raw header lines: ok is false when a field
// that changes the answer on net/http's path is present (with any value),
// and hasINM, hasIMS say whether If-None-Match and If-Modified-Since are.
func scanRequestHeader(raw []byte) (hasINM, hasIMS, ok bool) {
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != ':' && raw[i] != '\n' {
			i++
		}
		name := raw[:i]
		switch len(name) {
		case 5:
			if fastpath.EqualFold(name, "range") {
				return false, false, false
			}
		case 6:
			if fastpath.EqualFold(name, "pragma") {
				return false, false, false
			}
		case 7:
			if fastpath.EqualFold(name, "upgrade") {
				return false, false, false
			}
		case 8:
			if fastpath.EqualFold(name, "if-match") || fastpath.EqualFold(name, "if-range") {
				return false, false, false
			}
		case 13:
			if fastpath.EqualFold(name, "cache-control") || fastpath.EqualFold(name, "authorization") {
				return false, false, false
			}
			if fastpath.EqualFold(name, "if-none-match") {
				hasINM = true
			}
		case 17:
			if fastpath.EqualFold(name, "if-modified-since") {
				hasIMS = true
			}
		case 19:
			if fastpath.EqualFold(name, "if-unmodified-since") {
				return false, false, false
			}
		}
		j := i
		for j < len(raw) && raw[j] != '\n' {
			j++
		}
		if j == len(raw) {
			break
		}
		raw = raw[j+1:]
	}
	return hasINM, hasIMS, true
}

// fastHeaderOK reports whether net/http would write the stored header as
// it is: token names, values without CR or LF or surrounding blanks (it
// turns newlines into spaces and trims values).
func fastHeaderOK(hdr http.Header) bool {
	for k, vs := range hdr {
		if k == "" {
			return false
		}
		for i := 0; i < len(k); i++ {
			if !isTokenByte(k[i]) {
				return false
			}
		}
		for _, v := range vs {
			if n := len(v); n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n-1] == ' ' || v[n-1] == '\t') {
				return false
			}
			if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
				return false
			}
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// needsSniff reports whether net/http would add a sniffed Content-Type to
// a body written with this header (the site's headers set first): no
// Content-Type at all, and no non-empty Content-Encoding.
func needsSniff(hdr http.Header, defs [][2]string) bool {
	if _, ok := hdr["Content-Type"]; ok {
		return false
	}
	if ce := hdr["Content-Encoding"]; len(ce) > 0 && ce[0] != "" {
		return false
	}
	for _, kv := range defs {
		switch kv[0] {
		case "Content-Type":
			return false
		case "Content-Encoding":
			if kv[1] != "" && hdr["Content-Encoding"] == nil {
				return false
			}
		}
	}
	return true
}

// getBytes is Get for a key in a byte slice (no allocation for the lookup).
func (m *memoryStore) getBytes(key []byte) *entry {
	m.mu.Lock()
	el, ok := m.items[string(key)]
	if !ok {
		m.mu.Unlock()
		return nil
	}
	it := el.Value.(*memItem)
	if !it.e.Expires.IsZero() && m.nowFunc().After(it.e.Expires) {
		m.removeLocked(el)
		m.mu.Unlock()
		return nil
	}
	m.ll.MoveToFront(el)
	m.mu.Unlock()
	return it.e
}
