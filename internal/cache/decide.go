package cache

// The decision core: what a stored entry answers to a request, decided
// once here and rendered by both engines (serveEntry and serveRange for
// net/http, serveFast for the fast path). The engines only read the
// request into the small values below (cacheControl, conditional) and
// write what the decisions say.

import (
	"net/http"
	"strings"
	"time"
)

// conditional is a client's If-None-Match and If-Modified-Since as both
// engines read them: presence (not value) decides which field wins.
type conditional struct {
	hasINM bool
	inm    []string // If-None-Match field lines
	ims    string   // the first If-Modified-Since value, "" when absent
}

// conditionalOf reads a net/http request's conditional fields.
func conditionalOf(h http.Header) conditional {
	c := conditional{inm: h["If-None-Match"]}
	c.hasINM = c.inm != nil
	if ims := h["If-Modified-Since"]; len(ims) > 0 {
		c.ims = ims[0]
	}
	return c
}

// notModified evaluates a client's conditional GET against a response's
// validators (RFC 9110 section 13.2.2: If-None-Match wins over
// If-Modified-Since).
func (c conditional) notModified(etag string, lastMod time.Time) bool {
	if c.hasINM {
		return etag != "" && etagListMatches(c.inm, etag)
	}
	if c.ims != "" && !lastMod.IsZero() {
		t, err := http.ParseTime(c.ims)
		return err == nil && !lastMod.After(t)
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

// hitAnswer is how a stored entry answers a request: its status, and
// whether the stored body is sent.
type hitAnswer struct {
	status      int
	notModified bool // a 304 instead of the stored 200: droppedOn304 fields left out
	body        bool
}

// answer decides the response a stored entry gives to a GET or HEAD with
// the client's conditionals c: a 304 for a stored 200 whose validators
// match, else the stored status, with the body for a GET when there is one.
func (e *entry) answer(head bool, c conditional) hitAnswer {
	if e.Status == http.StatusOK && c.notModified(e.etag, e.imsTime) {
		return hitAnswer{status: http.StatusNotModified, notModified: true}
	}
	return hitAnswer{status: e.Status, body: !head && len(e.Body) > 0 && bodyAllowed(e.Status)}
}

// bodyFields are the stored fields a 304 made from a stored 200 leaves
// out: they describe the body the 304 does not send.
func bodyFields() [3]string { return [3]string{"Content-Length", "Content-Type", "Content-Encoding"} }

// droppedOn304 reports whether k is one of bodyFields.
func droppedOn304(k string) bool {
	for _, f := range bodyFields() {
		if k == f {
			return true
		}
	}
	return false
}

// noRequestDirectives is the cacheControl of a request without
// Cache-Control or Pragma.
func noRequestDirectives() cacheControl { return newCacheControl() }

// servesFresh reports whether an entry of current age answers a request
// with directives rcc without going upstream: fresh, not always
// revalidated (no-cache), and within the request's max-age and min-fresh.
func (e *entry) servesFresh(rcc cacheControl, age time.Duration) bool {
	return age < e.lifetime && !e.noCache && acceptable(rcc, e, age)
}

// acceptable applies the request's no-cache, max-age and min-fresh to a
// fresh entry.
func acceptable(rcc cacheControl, e *entry, age time.Duration) bool {
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

// servesStale reports whether a stale entry of current age may answer
// without waiting for upstream: the client accepts it (max-stale), or the
// response allows it while one background fetch refreshes it
// (stale-while-revalidate; refresh is then true). Entries that are
// no-cache or forbid stale serving (must-revalidate, s-maxage), and
// requests with no-cache or max-age, never get stale content.
func (e *entry) servesStale(rcc cacheControl, age time.Duration) (serve, refresh bool) {
	if age < e.lifetime || e.noCache || e.mustRevalidate || rcc.noCache || rcc.maxAge >= 0 {
		return false, false
	}
	staleFor := age - e.lifetime
	if rcc.maxStaleAny || (rcc.maxStale >= 0 && staleFor <= time.Duration(rcc.maxStale)*time.Second) {
		return true, false
	}
	if e.swr > 0 && staleFor <= e.swr {
		return true, true
	}
	return false, false
}

// staleIfError reports whether a stale entry may answer an upstream error
// at age (RFC 5861 section 4; the request's stale-if-error wins).
func (e *entry) staleIfError(rcc cacheControl, age time.Duration) bool {
	if e.mustRevalidate || e.noCache {
		return false
	}
	window := e.sie
	if rs := rcc.staleIfError; rs >= 0 {
		window = time.Duration(rs) * time.Second
	}
	return window > 0 && age-e.lifetime <= window
}
