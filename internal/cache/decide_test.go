package cache

import (
	"net/http"
	"testing"
	"time"
)

// The 304 decision both engines render (RFC 9110 section 13.2.2 and
// 13.1.2-3): If-None-Match, when present, decides alone.
func TestEntryAnswer(t *testing.T) {
	lm := mustTime(t, "Sun, 01 Mar 2026 10:00:00 GMT")
	e := &entry{Status: 200, Body: []byte("x"), etag: `"v1"`, lastModTime: lm, imsTime: lm}
	for _, tc := range []struct {
		name string
		head bool
		c    conditional
		want hitAnswer
	}{
		{"plain GET", false, conditional{}, hitAnswer{status: 200, body: true}},
		{"HEAD", true, conditional{}, hitAnswer{status: 200}},
		{"INM match", false, conditional{hasINM: true, inm: []string{`"v1"`}}, hitAnswer{status: 304, notModified: true}},
		{"INM weak match", false, conditional{hasINM: true, inm: []string{`W/"v1", "v2"`}}, hitAnswer{status: 304, notModified: true}},
		{"INM star", false, conditional{hasINM: true, inm: []string{`*`}}, hitAnswer{status: 304, notModified: true}},
		{"INM other", false, conditional{hasINM: true, inm: []string{`"v2"`}}, hitAnswer{status: 200, body: true}},
		{"empty INM wins over IMS", false, conditional{hasINM: true, inm: []string{""}, ims: "Sun, 01 Mar 2026 11:00:00 GMT"}, hitAnswer{status: 200, body: true}},
		{"IMS later", false, conditional{ims: "Sun, 01 Mar 2026 11:00:00 GMT"}, hitAnswer{status: 304, notModified: true}},
		{"IMS earlier", false, conditional{ims: "Sun, 01 Mar 2026 09:00:00 GMT"}, hitAnswer{status: 200, body: true}},
		{"IMS unreadable", false, conditional{ims: "yesterday"}, hitAnswer{status: 200, body: true}},
	} {
		if got := e.answer(tc.head, tc.c); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	e404 := &entry{Status: 404, Body: []byte("x"), etag: `"v1"`}
	if got := e404.answer(false, conditional{hasINM: true, inm: []string{`"v1"`}}); got.status != 404 || !got.body {
		t.Errorf("a stored 404 is never turned into a 304: %+v", got)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := http.ParseTime(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// The freshness decisions both engines use (RFC 9111 4.2, 5.2.1; RFC 5861).
func TestEntryFreshnessDecisions(t *testing.T) {
	const s = time.Second
	none := noRequestDirectives()
	req := func(line string) cacheControl {
		cc := parseCacheControl([]string{line})
		return cc
	}
	plain := &entry{lifetime: 60 * s}
	swr := &entry{lifetime: 60 * s, swr: 30 * s}
	mustReval := &entry{lifetime: 60 * s, swr: 30 * s, mustRevalidate: true}
	noCache := &entry{lifetime: 60 * s, noCache: true}
	for _, tc := range []struct {
		name           string
		e              *entry
		rcc            cacheControl
		age            time.Duration
		fresh          bool
		stale, refresh bool
	}{
		{"fresh", plain, none, 10 * s, true, false, false},
		{"at lifetime: stale", plain, none, 60 * s, false, false, false},
		{"request max-age exceeded", plain, req("max-age=5"), 10 * s, false, false, false},
		{"request min-fresh not met", plain, req("min-fresh=55"), 10 * s, false, false, false},
		{"request no-cache", plain, req("no-cache"), 10 * s, false, false, false},
		{"no-cache entry", noCache, none, 10 * s, false, false, false},
		{"max-stale within", plain, req("max-stale=20"), 70 * s, false, true, false},
		{"max-stale past", plain, req("max-stale=5"), 70 * s, false, false, false},
		{"max-stale any", plain, req("max-stale"), 600 * s, false, true, false},
		{"stale-while-revalidate within", swr, none, 80 * s, false, true, true},
		{"stale-while-revalidate past", swr, none, 95 * s, false, false, false},
		{"must-revalidate forbids stale", mustReval, req("max-stale"), 70 * s, false, false, false},
		{"request max-age forbids stale", swr, req("max-age=100"), 70 * s, false, false, false},
	} {
		if got := tc.e.servesFresh(tc.rcc, tc.age); got != tc.fresh {
			t.Errorf("%s: servesFresh = %v, want %v", tc.name, got, tc.fresh)
		}
		stale, refresh := tc.e.servesStale(tc.rcc, tc.age)
		if stale != tc.stale || refresh != tc.refresh {
			t.Errorf("%s: servesStale = %v, %v, want %v, %v", tc.name, stale, refresh, tc.stale, tc.refresh)
		}
	}
}
