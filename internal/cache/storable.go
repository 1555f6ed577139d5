package cache

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// storable decides whether a response may be stored (RFC 9111 section 3
// for a shared cache, plus portico's Set-Cookie rule). Any final status
// but 206 and 304 may be stored when the response says how (explicit
// freshness or public); the statuses cacheable by default also with no
// word about it (heuristic freshness).
func (h *Handler) storable(r *http.Request, rcc cacheControl, code int, hdr http.Header, now time.Time) bool {
	if r.Method != http.MethodGet || !storableStatus(code) || rcc.noStore {
		return false
	}
	cc := parseCacheControl(responseDirectives(hdr))
	// must-understand (section 5.2.2.3): a cache that knows the status's
	// rules ignores no-store; one that does not must not store.
	if cc.mustUnderstand {
		if !understoodStatus(code) {
			return false
		}
		cc.noStore = false
	}
	if cc.noStore || cc.private {
		return false
	}
	if !heuristicStatus(code) && !cc.public && !hasExplicitFreshness(cc, hdr) {
		return false // section 3: nothing says this status may be stored
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
	lifetime := freshnessLifetime(cc, hdr, now, heuristicAllowed(code, cc))
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
func finishEntry(e *entry, rawHdr http.Header) {
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

// put stores an entry at its key, through a Vary marker when it varies,
// unless an invalidation of the key came after the fetch began at start.
// It reports whether the store accepted it.
func (h *Handler) put(ctx context.Context, r *http.Request, st fetchState, e *entry, names []string, start uint64) bool {
	ctx = context.WithoutCancel(ctx)
	guard := h.inv.guard(st.key, start)
	if !guard() {
		return false
	}
	if len(names) == 0 {
		return h.counted(h.store.Set(ctx, st.key, e, guard))
	}
	marker := st.marker
	if marker == nil || !slices.Equal(marker.VaryNames, names) {
		marker = &entry{URL: e.URL, VaryNames: names, MarkerID: newMarkerID()}
	} else if e.Expires.After(marker.Expires) {
		// Stored markers are shared: extend a copy.
		marker = &entry{URL: marker.URL, VaryNames: marker.VaryNames, MarkerID: marker.MarkerID}
	}
	if e.Expires.After(marker.Expires) {
		marker.Expires = e.Expires
	}
	e.VaryNames = names
	e.VaryKey = secondaryKey(r.Header, names)
	ok := h.store.Set(ctx, variantKey(st.key, marker.MarkerID, e.VaryKey), e, guard)
	return h.counted(ok && h.store.Set(ctx, st.key, marker, guard))
}

// counted counts a stored entry.
func (h *Handler) counted(stored bool) bool {
	if stored {
		h.stats.stored.Add(1)
	}
	return stored
}
