package cache

import (
	"net/http"
	"testing"
	"time"
)

// Every Cache-Status value portico sends, rendered by the one renderer.
func TestCacheStatusRendering(t *testing.T) {
	for _, tc := range []struct {
		s    cacheStatus
		want string
	}{
		{cacheStatus{hit: true, ttl: 42}, "portico; hit; ttl=42"},
		{cacheStatus{hit: true, ttl: -3}, "portico; hit; ttl=-3"},
		{cacheStatus{fwd: "uri-miss", stored: true}, "portico; fwd=uri-miss; stored"},
		{cacheStatus{fwd: "stale", fwdStatus: 304}, "portico; fwd=stale; fwd-status=304"},
		{cacheStatus{fwd: "stale", fwdStatus: 200, stored: true}, "portico; fwd=stale; fwd-status=200; stored"},
		{cacheStatus{fwd: "bypass"}, "portico; fwd=bypass"},
		{cacheStatus{fwd: "uri-miss", collapsed: true}, "portico; fwd=uri-miss; collapsed"},
		{cacheStatus{fwd: "stale", fwdStatus: 503, detail: "stale-if-error"}, "portico; fwd=stale; fwd-status=503; detail=stale-if-error"},
		{cacheStatus{fwd: "miss", detail: "only-if-cached"}, "portico; fwd=miss; detail=only-if-cached"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}

// The 304 decision both engines render (RFC 9110 section 13.2.2 and
// 13.1.2-3): If-None-Match, when present, decides alone.
func TestEntryAnswer(t *testing.T) {
	lm := mustTime(t, "Sun, 01 Mar 2026 10:00:00 GMT")
	e := &entry{Status: 200, Body: []byte("x"), etag: `"v1"`, lastModTime: lm}
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
