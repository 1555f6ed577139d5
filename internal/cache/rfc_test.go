package cache

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// step is one request of a table row.
type step struct {
	advance    time.Duration   // clock moves first
	origin     func(o *origin) // origin changes first
	method     string          // default GET
	target     string          // default http://example.test/r
	hdr        []string        // request header pairs ("Host" sets r.Host)
	wantStatus int             // default 200
	wantCS     string          // substring of Cache-Status ("" = don't check)
	noCS       string          // must not be in Cache-Status
	wantHits   int64           // origin hits so far (-1 = don't check)
	wantBody   string          // "" = don't check
	check      func(t *testing.T, res *http.Response, o *origin)
}

type rfcCase struct {
	name   string // names the RFC section it checks
	cfg    config.Cache
	status int
	body   string
	hdr    []string // origin response header pairs
	steps  []step
}

func runCases(t *testing.T, cases []rfcCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			status := tc.status
			if status == 0 {
				status = 200
			}
			b := tc.body
			if b == "" {
				b = "hello"
			}
			o := newOrigin(clock, status, b, tc.hdr...)
			h := newTestCache(t, tc.cfg, o, clock)
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				if s.origin != nil {
					s.origin(o)
				}
				method, target := s.method, s.target
				if method == "" {
					method = "GET"
				}
				if target == "" {
					target = "http://example.test/r"
				}
				res := do(h, method, target, s.hdr...)
				cs := res.Header.Get("Cache-Status")
				want := s.wantStatus
				if want == 0 {
					want = 200
				}
				if res.StatusCode != want {
					t.Errorf("step %d: status %d, want %d (Cache-Status %q)", i, res.StatusCode, want, cs)
				}
				if !strings.Contains(cs, s.wantCS) {
					t.Errorf("step %d: Cache-Status %q, want it to contain %q", i, cs, s.wantCS)
				}
				if s.noCS != "" && strings.Contains(cs, s.noCS) {
					t.Errorf("step %d: Cache-Status %q, must not contain %q", i, cs, s.noCS)
				}
				if got := o.hits.Load(); s.wantHits >= 0 && got != s.wantHits {
					t.Errorf("step %d: origin hits %d, want %d (Cache-Status %q)", i, got, s.wantHits, cs)
				}
				got := body(t, res)
				if s.wantBody != "" && got != s.wantBody {
					t.Errorf("step %d: body %q, want %q", i, got, s.wantBody)
				}
				if s.check != nil {
					s.check(t, res, o)
				}
			}
		})
	}
}

func hit(hits int64) step  { return step{wantCS: "portico; hit", wantHits: hits} }
func miss(hits int64) step { return step{wantCS: "fwd=", noCS: "stored", wantHits: hits} }
func stored(hits int64) step {
	return step{wantCS: "stored", wantHits: hits}
}
func after(d time.Duration, s step) step { s.advance = d; return s }
func withHdr(s step, kv ...string) step  { s.hdr = kv; return s }

func TestRFC9111Freshness(t *testing.T) {
	past := func(d time.Duration) string { return newClock().Now().Add(-d).Format(http.TimeFormat) }
	future := func(d time.Duration) string { return newClock().Now().Add(d).Format(http.TimeFormat) }
	runCases(t, []rfcCase{
		{name: "RFC9111 5.2.2.1 max-age: fresh then stale", hdr: []string{"Cache-Control", "max-age=60"}, steps: []step{
			{wantCS: "portico; fwd=uri-miss; stored", wantHits: 1},
			{wantCS: "portico; hit; ttl=60", wantHits: 1},
			after(59*time.Second, step{wantCS: "portico; hit; ttl=1", wantHits: 1}),
			after(2*time.Second, step{wantCS: "portico; fwd=stale", wantHits: 2}),
			hit(2),
		}},
		{name: "RFC9111 5.2.2.10 s-maxage overrides max-age", hdr: []string{"Cache-Control", "max-age=100, s-maxage=10"}, steps: []step{
			stored(1), hit(1), after(11*time.Second, step{wantCS: "fwd=stale", wantHits: 2}),
		}},
		{name: "RFC9111 5.3 Expires relative to Date", hdr: []string{"Expires", future(30 * time.Second)}, steps: []step{
			stored(1), after(29*time.Second, hit(1)), after(2*time.Second, step{wantCS: "fwd=", wantHits: 2}),
		}},
		{name: "RFC9111 5.3 max-age wins over Expires", hdr: []string{"Cache-Control", "max-age=100", "Expires", future(10 * time.Second)}, steps: []step{
			stored(1), after(50*time.Second, hit(1)),
		}},
		{name: "RFC9111 5.3 invalid Expires means already expired", hdr: []string{"Expires", "0"}, steps: []step{
			miss(1), miss(2),
		}},
		{name: "RFC9111 4.2.1 invalid max-age means stale", hdr: []string{"Cache-Control", "max-age=abc"}, steps: []step{
			miss(1), miss(2),
		}},
		{name: "RFC9111 4.2.1 conflicting max-age duplicates mean stale", hdr: []string{"Cache-Control", "max-age=60", "Cache-Control", "max-age=3600"}, steps: []step{
			miss(1), miss(2),
		}},
		{name: "RFC9111 4.2.3 apparent age from Date", hdr: []string{"Date", past(100 * time.Second), "Cache-Control", "max-age=130"}, steps: []step{
			stored(1),
			{wantCS: "ttl=30", wantHits: 1, check: wantHeader("Age", "100")},
			after(31*time.Second, step{wantCS: "fwd=stale", wantHits: 2}),
		}},
		{name: "RFC9111 4.2.3 Age from upstream counts", hdr: []string{"Age", "50", "Cache-Control", "max-age=60"}, steps: []step{
			stored(1),
			after(5*time.Second, step{wantCS: "ttl=5", wantHits: 1, check: wantHeader("Age", "55")}),
			after(6*time.Second, step{wantCS: "fwd=stale", wantHits: 2}),
		}},
		{name: "RFC9111 5.1 Age on hits", hdr: []string{"Cache-Control", "max-age=60"}, steps: []step{
			{wantCS: "stored", wantHits: 1, check: wantHeader("Age", "")},
			after(10*time.Second, step{wantCS: "hit", wantHits: 1, check: wantHeader("Age", "10")}),
		}},
		{name: "RFC9111 4.2.2 heuristic freshness: 10% of Date - Last-Modified", hdr: []string{"Last-Modified", past(100 * time.Hour)}, steps: []step{
			stored(1), after(9*time.Hour, hit(1)),
			after(2*time.Hour, step{wantCS: "fwd=stale; fwd-status=304", wantHits: 2}),
		}},
		{name: "RFC9111 4.2.2 heuristic capped at a day", hdr: []string{"Last-Modified", past(1000 * 24 * time.Hour)}, steps: []step{
			stored(1), after(23*time.Hour, hit(1)), after(2*time.Hour, step{wantCS: "fwd=stale", wantHits: 2}),
		}},
		{name: "RFC9111 4.2.2 no heuristic without Last-Modified", steps: []step{miss(1), miss(2)}},
		{name: "RFC9111 4.2.2 no heuristic for 302", status: 302, hdr: []string{"Last-Modified", past(100 * time.Hour), "Location", "/x"}, steps: []step{
			{wantStatus: 302, wantCS: "fwd=", noCS: "stored", wantHits: 1}, {wantStatus: 302, wantHits: 2},
		}},
		// Issue 14: any final status with explicit freshness is stored
		// (RFC 9111 section 3 lists explicit freshness as enough); it
		// was not before, on purpose, and the public suite counts it.
		{name: "RFC9111 3 a 500 with max-age is stored", status: 500, hdr: []string{"Cache-Control", "max-age=60"}, steps: []step{
			{wantStatus: 500, wantCS: "stored", wantHits: 1}, {wantStatus: 500, wantCS: "hit", wantHits: 1},
		}},
		{name: "RFC9111 3 a 307 with max-age is stored", status: 307, hdr: []string{"Cache-Control", "max-age=60", "Location", "/t"}, steps: []step{
			{wantStatus: 307, wantCS: "stored", wantHits: 1}, {wantStatus: 307, wantCS: "hit", wantHits: 1, check: wantHeader("Location", "/t")},
		}},
		{name: "RFC9111 3 an unknown 599 with Expires is stored", status: 599, hdr: []string{"Expires", future(time.Hour)}, steps: []step{
			{wantStatus: 599, wantCS: "stored", wantHits: 1}, {wantStatus: 599, wantCS: "hit", wantHits: 1},
		}},
		{name: "RFC9111 3 a 503 with only a validator is not stored", status: 503, hdr: []string{"Etag", `"e"`, "Cache-Control", "no-cache"}, steps: []step{
			{wantStatus: 503, noCS: "stored", wantHits: 1}, {wantStatus: 503, wantHits: 2},
		}},
		{name: "RFC9111 4.2.2 heuristic for a 599 marked public", status: 599, hdr: []string{"Cache-Control", "public", "Last-Modified", past(100 * time.Hour)}, steps: []step{
			{wantStatus: 599, wantCS: "stored", wantHits: 1}, {wantStatus: 599, wantCS: "hit", wantHits: 1},
		}},
		{name: "RFC9111 5.2.2.3 must-understand with a known status ignores no-store", hdr: []string{"Cache-Control", "max-age=60, no-store, must-understand"}, steps: []step{
			stored(1), hit(1),
		}},
		{name: "RFC9111 5.2.2.3 must-understand with an unknown status is not stored", status: 599, hdr: []string{"Cache-Control", "max-age=60, no-store, must-understand"}, steps: []step{
			{wantStatus: 599, noCS: "stored", wantHits: 1}, {wantStatus: 599, wantHits: 2},
		}},
		{name: "RFC9110 15.1 404 with max-age is stored", status: 404, hdr: []string{"Cache-Control", "max-age=60"}, steps: []step{
			{wantStatus: 404, wantCS: "stored", wantHits: 1}, {wantStatus: 404, wantCS: "hit", wantHits: 1},
		}},
		{name: "RFC9110 15.1 301 with max-age is stored", status: 301, hdr: []string{"Cache-Control", "max-age=60", "Location", "/y"}, steps: []step{
			{wantStatus: 301, wantCS: "stored", wantHits: 1}, {wantStatus: 301, wantCS: "hit", wantHits: 1, check: wantHeader("Location", "/y")},
		}},
		{name: "RFC9110 15.1 204 with max-age is stored", status: 204, hdr: []string{"Cache-Control", "max-age=60"}, steps: []step{
			{wantStatus: 204, wantCS: "stored", wantHits: 1}, {wantStatus: 204, wantCS: "hit", wantHits: 1, check: wantHeader("Content-Length", "")},
		}},
		{name: "RFC9110 14 206 is never stored", status: 206, hdr: []string{"Cache-Control", "max-age=60", "Content-Range", "bytes 0-4/10"}, steps: []step{
			{wantStatus: 206, noCS: "stored", wantCS: "fwd=", wantHits: 1}, {wantStatus: 206, wantHits: 2},
		}},
	})
}

func wantHeader(k, v string) func(t *testing.T, res *http.Response, o *origin) {
	return func(t *testing.T, res *http.Response, o *origin) {
		t.Helper()
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: got %q, want %q", k, got, v)
		}
	}
}

func TestRFC9111Storage(t *testing.T) {
	noCookie := func(t *testing.T, res *http.Response, o *origin) {
		if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("Set-Cookie replayed from the cache: %q", c)
		}
	}
	hasCookie := wantHeader("Set-Cookie", "sid=alice")
	runCases(t, []rfcCase{
		{name: "RFC9111 5.2.2.5 no-store is not stored", hdr: []string{"Cache-Control", "no-store, max-age=60"}, steps: []step{miss(1), miss(2)}},
		{name: "RFC9111 5.2.2.7 private is not stored by a shared cache", hdr: []string{"Cache-Control", "private, max-age=60"}, steps: []step{miss(1), miss(2)}},
		{name: "RFC9111 5.2.2.7 qualified private is treated as private", hdr: []string{"Cache-Control", `private="Set-Cookie", max-age=60`}, steps: []step{miss(1), miss(2)}},
		{name: "RFC9111 5.2.1.5 request no-store: response not stored", hdr: []string{"Cache-Control", "max-age=60"}, steps: []step{
			withHdr(miss(1), "Cache-Control", "no-store"), stored(2), hit(2),
		}},
		{name: "RFC9111 5.2.2.4 no-cache: stored, always revalidated", hdr: []string{"Cache-Control", "no-cache", "Etag", `"v1"`}, steps: []step{
			stored(1),
			{wantCS: "fwd=stale; fwd-status=304", wantHits: 2, wantBody: "hello", check: func(t *testing.T, res *http.Response, o *origin) {
				if got := o.last().Get("If-None-Match"); got != `"v1"` {
					t.Errorf("If-None-Match upstream: got %q, want %q", got, `"v1"`)
				}
			}},
			{wantCS: "fwd=stale; fwd-status=304", wantHits: 3},
		}},
		{name: "RFC9111 5.2.2.4 no-cache without a validator is not stored", hdr: []string{"Cache-Control", "no-cache, max-age=60"}, steps: []step{miss(1), miss(2)}},
		{name: "RFC9111 3.5 Authorization: not stored", hdr: []string{"Cache-Control", "max-age=60"}, steps: []step{
			withHdr(miss(1), "Authorization", "Bearer alice"), withHdr(miss(2), "Authorization", "Bearer alice"), stored(3),
		}},
		{name: "RFC9111 3.5 Authorization: stored with public", hdr: []string{"Cache-Control", "public, max-age=60"}, steps: []step{
			withHdr(stored(1), "Authorization", "Bearer alice"), hit(1),
		}},
		{name: "RFC9111 3.5 Authorization: stored with s-maxage", hdr: []string{"Cache-Control", "s-maxage=60"}, steps: []step{
			withHdr(stored(1), "Authorization", "Bearer alice"), hit(1),
		}},
		{name: "RFC9111 3.5 Authorization: stored with must-revalidate", hdr: []string{"Cache-Control", "max-age=60, must-revalidate"}, steps: []step{
			withHdr(stored(1), "Authorization", "Bearer alice"), hit(1),
		}},
		{name: "portico Set-Cookie: not stored unless public", hdr: []string{"Cache-Control", "max-age=60", "Set-Cookie", "sid=alice"}, steps: []step{
			{wantCS: "fwd=", noCS: "stored", wantHits: 1, check: hasCookie},
			{wantHits: 2, check: hasCookie},
		}},
		{name: "portico Set-Cookie: public is stored, the cookie never replayed (LESSONS cross-user leak)", hdr: []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "sid=alice"}, steps: []step{
			{wantCS: "stored", wantHits: 1, check: hasCookie},
			{wantCS: "hit", wantHits: 1, wantBody: "hello", check: noCookie},
		}},
		{name: "RFC9111 4.1 Vary: * is never stored", hdr: []string{"Cache-Control", "max-age=60", "Vary", "*"}, steps: []step{miss(1), miss(2)}},
		{name: "LESSONS cache deception: no caching from the path's extension", steps: []step{
			{target: "http://example.test/profile/x.css", hdr: []string{"Authorization", "Bearer alice"}, wantCS: "fwd=", noCS: "stored", wantHits: 1},
			{target: "http://example.test/profile/x.css", wantCS: "fwd=", noCS: "stored", wantHits: 2},
		}},
	})
}

func TestRFC9111Vary(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "lang=", "Cache-Control", "max-age=60", "Vary", "Accept-Language")
	o.echo = "Accept-Language"
	h := newTestCache(t, config.Cache{}, o, clock)
	steps := []struct {
		lang, wantCS, wantBody string
		wantHits               int64
	}{
		{"en", "fwd=uri-miss; stored", "lang=en", 1},
		{"fr", "fwd=vary-miss; stored", "lang=fr", 2},
		{"en", "hit", "lang=en", 2},
		{"fr", "hit", "lang=fr", 2},
		{" fr ", "hit", "lang=fr", 2}, // RFC 9111 4.1: whitespace normalised
		{"", "fwd=vary-miss", "lang=", 3},
	}
	for i, s := range steps {
		var res *http.Response
		if s.lang == "" {
			res = do(h, "GET", "http://example.test/v")
		} else {
			res = do(h, "GET", "http://example.test/v", "Accept-Language", s.lang)
		}
		cs := res.Header.Get("Cache-Status")
		if !strings.Contains(cs, s.wantCS) {
			t.Errorf("step %d (RFC9111 4.1): Cache-Status %q, want %q", i, cs, s.wantCS)
		}
		if got := body(t, res); got != s.wantBody {
			t.Errorf("step %d: body %q, want %q", i, got, s.wantBody)
		}
		if got := o.hits.Load(); got != s.wantHits {
			t.Errorf("step %d: hits %d, want %d", i, got, s.wantHits)
		}
	}
}

func TestRFC9111Validation(t *testing.T) {
	runCases(t, []rfcCase{
		{name: "RFC9111 4.3.1 If-None-Match sent, RFC9111 4.3.4 304 refreshes headers", hdr: []string{"Cache-Control", "max-age=10", "Etag", `"v1"`, "X-Version", "1"}, steps: []step{
			stored(1),
			after(11*time.Second, step{
				origin: func(o *origin) {
					o.set(200, "new body", "Cache-Control", "max-age=20", "Etag", `"v1"`, "X-Version", "2")
				},
				wantCS: "portico; fwd=stale; fwd-status=304", wantHits: 2, wantBody: "hello",
				check: func(t *testing.T, res *http.Response, o *origin) {
					if got := o.last().Get("If-None-Match"); got != `"v1"` {
						t.Errorf("If-None-Match upstream: got %q", got)
					}
					if got := res.Header.Get("X-Version"); got != "2" {
						t.Errorf("X-Version after 304: got %q, want 2", got)
					}
					if got := res.Header.Get("Content-Length"); got != "5" {
						t.Errorf("Content-Length after 304: got %q, want 5", got)
					}
				},
			}),
			after(15*time.Second, step{wantCS: "hit; ttl=5", wantHits: 2, wantBody: "hello", check: wantHeader("X-Version", "2")}),
		}},
		{name: "RFC9111 4.3.1 If-Modified-Since sent when only Last-Modified", hdr: []string{"Cache-Control", "max-age=10", "Last-Modified", "Sun, 01 Feb 2026 00:00:00 GMT"}, steps: []step{
			stored(1),
			after(11*time.Second, step{wantCS: "fwd-status=304", wantHits: 2, check: func(t *testing.T, res *http.Response, o *origin) {
				if got := o.last().Get("If-Modified-Since"); got != "Sun, 01 Feb 2026 00:00:00 GMT" {
					t.Errorf("If-Modified-Since upstream: got %q", got)
				}
			}}),
		}},
		{name: "RFC9111 4.3.1 HEAD revalidates a stale stored GET", hdr: []string{"Cache-Control", "max-age=10", "Etag", `"h"`}, steps: []step{
			stored(1),
			after(11*time.Second, step{method: "HEAD", wantCS: "fwd=stale; fwd-status=304", wantHits: 2, check: func(t *testing.T, res *http.Response, o *origin) {
				if got := o.last().Get("If-None-Match"); got != `"h"` {
					t.Errorf("If-None-Match upstream: got %q", got)
				}
			}}),
			{wantCS: "hit", wantHits: 2, wantBody: "hello"},
		}},
		{name: "RFC9111 5.2.2.4 no-cache with max-age still revalidates (fwd=stale)", hdr: []string{"Cache-Control", "no-cache, max-age=60", "Etag", `"n"`}, steps: []step{
			stored(1), {wantCS: "fwd=stale; fwd-status=304", wantHits: 2},
		}},
		{name: "RFC9111 4.3.2 the cache answers a client's If-None-Match itself", hdr: []string{"Cache-Control", "max-age=60", "Etag", `"v1"`}, steps: []step{
			{hdr: []string{"If-None-Match", `"v1"`}, wantStatus: 304, wantCS: "stored", wantHits: 1, check: func(t *testing.T, res *http.Response, o *origin) {
				if got := o.last().Get("If-None-Match"); got != "" {
					t.Errorf("client's If-None-Match forwarded on a miss: %q", got)
				}
			}},
			{hdr: []string{"If-None-Match", `W/"v1"`}, wantStatus: 304, wantCS: "hit", wantHits: 1},
			{hdr: []string{"If-None-Match", `"v0"`}, wantStatus: 200, wantCS: "hit", wantHits: 1, wantBody: "hello"},
		}},
		{name: "RFC9111 4.3.4 a full 200 replaces the stale entry", hdr: []string{"Cache-Control", "max-age=10", "Etag", `"v1"`}, steps: []step{
			stored(1),
			after(11*time.Second, step{origin: func(o *origin) {
				o.set(200, "v2", "Cache-Control", "max-age=10", "Etag", `"v2"`)
			}, wantCS: "fwd=stale; fwd-status=200; stored", wantHits: 2, wantBody: "v2"}),
			step{wantCS: "hit", wantHits: 2, wantBody: "v2"},
		}},
		{name: "RFC9111 5.2.2.2 must-revalidate: no stale-while-revalidate", hdr: []string{"Cache-Control", "max-age=1, must-revalidate, stale-while-revalidate=60", "Etag", `"a"`}, steps: []step{
			stored(1), after(5*time.Second, step{wantCS: "fwd=stale; fwd-status=304", wantHits: 2}),
		}},
		{name: "RFC9111 5.2.2.8 proxy-revalidate: no stale-while-revalidate", hdr: []string{"Cache-Control", "max-age=1, proxy-revalidate, stale-while-revalidate=60", "Etag", `"a"`}, steps: []step{
			stored(1), after(5*time.Second, step{wantCS: "fwd=stale; fwd-status=304", wantHits: 2}),
		}},
		{name: "RFC9111 5.2.2.10 s-maxage implies proxy-revalidate", hdr: []string{"Cache-Control", "s-maxage=1, stale-while-revalidate=60", "Etag", `"a"`}, steps: []step{
			stored(1), after(5*time.Second, step{wantCS: "fwd=stale; fwd-status=304", wantHits: 2}),
		}},
		{name: "RFC9111 5.2.2.2 must-revalidate: no stale-if-error", hdr: []string{"Cache-Control", "max-age=1, must-revalidate, stale-if-error=60"}, steps: []step{
			stored(1), after(5*time.Second, step{origin: func(o *origin) { o.set(503, "down") }, wantStatus: 503, wantHits: 2, wantBody: "down"}),
		}},
		{name: "RFC5861 3 stale-while-revalidate serves stale and refreshes in the background", hdr: []string{"Cache-Control", "max-age=1, stale-while-revalidate=30"}, steps: []step{
			stored(1),
			after(5*time.Second, step{origin: func(o *origin) { o.set(200, "v2", "Cache-Control", "max-age=60") },
				wantCS: "portico; hit; ttl=-4", wantBody: "hello", wantHits: 2}),
			{wantCS: "portico; hit; ttl=60", wantBody: "v2", wantHits: 2},
		}},
		{name: "RFC5861 3 stale-while-revalidate window ends", hdr: []string{"Cache-Control", "max-age=1, stale-while-revalidate=30"}, steps: []step{
			stored(1), after(40*time.Second, step{wantCS: "fwd=stale", wantHits: 2}),
		}},
		{name: "RFC5861 4 stale-if-error serves stale on upstream errors", hdr: []string{"Cache-Control", "max-age=1, stale-if-error=60"}, steps: []step{
			stored(1),
			after(5*time.Second, step{origin: func(o *origin) { o.set(503, "down") },
				wantCS: "portico; fwd=stale; fwd-status=503; detail=stale-if-error", wantBody: "hello", wantHits: 2}),
			after(60*time.Second, step{wantStatus: 503, wantBody: "down", wantHits: 3}),
		}},
		{name: "RFC5861 4 stale-if-error from the request", hdr: []string{"Cache-Control", "max-age=1"}, steps: []step{
			stored(1),
			after(5*time.Second, step{origin: func(o *origin) { o.set(502, "down") }, hdr: []string{"Cache-Control", "stale-if-error=30"},
				wantCS: "fwd-status=502", wantBody: "hello", wantHits: 2}),
		}},
	})
}

func TestRFC9111RequestDirectives(t *testing.T) {
	cc60 := []string{"Cache-Control", "max-age=60", "Etag", `"e"`}
	runCases(t, []rfcCase{
		{name: "RFC9111 5.2.1.4 request no-cache forces revalidation", hdr: cc60, steps: []step{
			stored(1), withHdr(step{wantCS: "fwd=request; fwd-status=304", wantHits: 2}, "Cache-Control", "no-cache"), hit(2),
		}},
		{name: "RFC9111 5.2.1.1 request max-age=0 forces revalidation", hdr: cc60, steps: []step{
			stored(1), after(time.Second, withHdr(step{wantCS: "fwd=request", wantHits: 2}, "Cache-Control", "max-age=0")),
		}},
		{name: "RFC9111 5.2.1.1 request max-age accepts younger entries", hdr: cc60, steps: []step{
			stored(1), after(5*time.Second, withHdr(hit(1), "Cache-Control", "max-age=10")),
			after(10*time.Second, withHdr(step{wantCS: "fwd=request", wantHits: 2}, "Cache-Control", "max-age=10")),
		}},
		{name: "RFC9111 5.4 Pragma: no-cache without Cache-Control forces revalidation", hdr: cc60, steps: []step{
			stored(1), withHdr(step{wantCS: "fwd=request", wantHits: 2}, "Pragma", "no-cache"),
		}},
		{name: "RFC9111 5.2.1.4 ignore_client_no_cache", cfg: config.Cache{IgnoreClientNoCache: true}, hdr: cc60, steps: []step{
			stored(1), withHdr(hit(1), "Cache-Control", "no-cache"), withHdr(hit(1), "Pragma", "no-cache"),
			withHdr(hit(1), "Cache-Control", "max-age=0"),
		}},
		{name: "RFC9111 5.2.1.3 min-fresh", hdr: cc60, steps: []step{
			stored(1), after(50*time.Second, withHdr(step{wantCS: "fwd=request", wantHits: 2}, "Cache-Control", "min-fresh=20")),
		}},
		{name: "RFC9111 5.2.1.2 max-stale accepts a stale entry", hdr: []string{"Cache-Control", "max-age=1"}, steps: []step{
			stored(1), after(5*time.Second, withHdr(step{wantCS: "hit; ttl=-4", wantHits: 1}, "Cache-Control", "max-stale=10")),
			withHdr(step{wantCS: "hit", wantHits: 1}, "Cache-Control", "max-stale"),
		}},
		{name: "RFC9111 5.2.1.7 only-if-cached: 504 on a miss", hdr: cc60, steps: []step{
			withHdr(step{wantStatus: 504, wantHits: 0}, "Cache-Control", "only-if-cached"),
			stored(1),
			withHdr(hit(1), "Cache-Control", "only-if-cached"),
			after(61*time.Second, withHdr(step{wantStatus: 504, wantHits: 1}, "Cache-Control", "only-if-cached")),
		}},
	})
}

func TestRFC9111Methods(t *testing.T) {
	cc := []string{"Cache-Control", "max-age=60"}
	runCases(t, []rfcCase{
		{name: "RFC9110 9.3.2 HEAD answered from a stored GET", hdr: cc, steps: []step{
			stored(1),
			{method: "HEAD", wantCS: "hit", wantHits: 1, check: func(t *testing.T, res *http.Response, o *origin) {
				if res.Header.Get("Content-Length") != "5" {
					t.Errorf("HEAD Content-Length %q, want 5", res.Header.Get("Content-Length"))
				}
			}},
		}},
		{name: "RFC9110 9.3.2 HEAD miss is forwarded, not stored", hdr: cc, steps: []step{
			{method: "HEAD", wantCS: "fwd=uri-miss", noCS: "stored", wantHits: 1}, stored(2), hit(2),
		}},
		{name: "RFC9111 4.4 POST invalidates the target URI", hdr: cc, steps: []step{
			stored(1), hit(1), {method: "POST", wantCS: "fwd=bypass", wantHits: 2}, stored(3),
		}},
		{name: "RFC9111 4.4 PUT DELETE PATCH invalidate", hdr: cc, steps: []step{
			stored(1), {method: "PUT", wantHits: 2}, stored(3), {method: "DELETE", wantHits: 4}, stored(5), {method: "PATCH", wantHits: 6}, stored(7),
		}},
		{name: "RFC9111 4.4 an error response does not invalidate", hdr: cc, steps: []step{
			stored(1), {method: "POST", origin: func(o *origin) { o.set(500, "no", "Cache-Control", "max-age=60") }, wantStatus: 500, wantHits: 2}, hit(2),
		}},
		{name: "RFC9111 4.4 Location and Content-Location of the same origin are invalidated", hdr: cc, steps: []step{
			{target: "http://example.test/a", wantCS: "stored", wantHits: 1},
			{target: "http://example.test/b?x=1", wantCS: "stored", wantHits: 2},
			{target: "http://other.test/a", wantCS: "stored", wantHits: 3},
			{method: "POST", target: "http://example.test/form", origin: func(o *origin) {
				o.set(303, "", "Location", "/a", "Content-Location", "http://EXAMPLE.test:80/b?x=1")
			}, wantStatus: 303, wantHits: 4},
			{target: "http://other.test/a", origin: func(o *origin) { o.set(200, "hello", "Cache-Control", "max-age=60") }, wantCS: "hit", wantHits: 4},
			{target: "http://example.test/a", wantCS: "uri-miss", wantHits: 5},
			{target: "http://example.test/b?x=1", wantCS: "uri-miss", wantHits: 6},
		}},
		{name: "RFC9111 4.4 Location of another origin is not invalidated", hdr: cc, steps: []step{
			{target: "http://other.test/a", wantCS: "stored", wantHits: 1},
			{method: "POST", target: "http://example.test/form", origin: func(o *origin) {
				o.set(201, "", "Location", "http://other.test/a")
			}, wantStatus: 201, wantHits: 2},
			{target: "http://other.test/a", wantCS: "hit", wantHits: 2},
		}},
		{name: "RFC9110 14 Range miss passes through unstored", hdr: cc, steps: []step{
			{hdr: []string{"Range", "bytes=0-1"}, wantCS: "fwd=bypass", noCS: "stored", wantHits: 1},
			stored(2),
			{hdr: []string{"Range", "bytes=1-3"}, wantStatus: 206, wantCS: "hit", wantBody: "ell", wantHits: 2},
		}},
		{name: "RFC9110 9.3.7 OPTIONS is bypassed", hdr: cc, steps: []step{
			{method: "OPTIONS", wantCS: "fwd=bypass", wantHits: 1}, stored(2),
		}},
	})
}

func TestCacheKey(t *testing.T) {
	cc := []string{"Cache-Control", "max-age=60"}
	runCases(t, []rfcCase{
		{name: "LESSONS poisoning: host is keyed, X-Forwarded-Host is not trusted", hdr: cc, steps: []step{
			{target: "http://a.test/p", hdr: []string{"X-Forwarded-Host", "evil.test"}, wantCS: "stored", wantHits: 1},
			{target: "http://b.test/p", wantCS: "uri-miss", wantHits: 2},
		}},
		{name: "host lower-cased and default port removed", hdr: cc, steps: []step{
			{target: "http://a.test/p", wantCS: "stored", wantHits: 1},
			{target: "http://a.test/p", hdr: []string{"Host", "A.TEST:80"}, wantCS: "hit", wantHits: 1},
			{target: "http://a.test/p", hdr: []string{"Host", "a.test:8080"}, wantCS: "uri-miss", wantHits: 2},
		}},
		{name: "query is keyed by default", hdr: cc, steps: []step{
			{target: "http://a.test/p?x=1", wantCS: "stored", wantHits: 1},
			{target: "http://a.test/p?x=2", wantCS: "uri-miss", wantHits: 2},
			{target: "http://a.test/p", wantCS: "uri-miss", wantHits: 3},
		}},
		{name: "key without query", cfg: config.Cache{Key: []string{"method", "scheme", "host", "path"}}, hdr: cc, steps: []step{
			{target: "http://a.test/p?x=1", wantCS: "stored", wantHits: 1},
			{target: "http://a.test/p?x=2", wantCS: "hit", wantHits: 1},
		}},
		{name: "key without host", cfg: config.Cache{Key: []string{"path", "query"}}, hdr: cc, steps: []step{
			{target: "http://a.test/p", wantCS: "stored", wantHits: 1},
			{target: "http://b.test/p", wantCS: "hit", wantHits: 1},
		}},
		{name: "escaped paths are distinct", hdr: cc, steps: []step{
			{target: "http://a.test/a%2Fb", wantCS: "stored", wantHits: 1},
			{target: "http://a.test/a/b", wantCS: "uri-miss", wantHits: 2},
		}},
	})
}

func TestCacheKeyScheme(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "x", "Cache-Control", "max-age=60")
	h := newTestCache(t, config.Cache{}, o, clock)
	do(h, "GET", "http://a.test/p")
	res := do(h, "GET", "https://a.test/p") // httptest sets r.TLS for https targets
	if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "uri-miss") {
		t.Errorf("https after http: Cache-Status %q, want uri-miss (scheme keyed)", cs)
	}
	h2 := newTestCache(t, config.Cache{Key: []string{"host", "path", "query"}}, o, clock)
	do(h2, "GET", "http://a.test/p")
	if cs := do(h2, "GET", "https://a.test/p").Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
		t.Errorf("key without scheme: Cache-Status %q, want hit", cs)
	}
}
