package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	type want struct {
		maxAge, sMaxAge, swr, sie int64
		maxAgeInvalid             bool
		noStore, noCache, private bool
		public, mustRevalidate    bool
	}
	d := func(w want) want {
		if w.maxAge == 0 && !w.maxAgeInvalid {
			w.maxAge = -1
		}
		if w.sMaxAge == 0 {
			w.sMaxAge = -1
		}
		if w.swr == 0 {
			w.swr = -1
		}
		if w.sie == 0 {
			w.sie = -1
		}
		return w
	}
	cases := []struct {
		in   []string
		want want
	}{
		{[]string{"max-age=60"}, d(want{maxAge: 60})},
		{[]string{"MAX-AGE=60, Public"}, d(want{maxAge: 60, public: true})},
		{[]string{`max-age="60"`}, d(want{maxAge: 60})},
		{[]string{"max-age = 60"}, d(want{maxAge: 60})},
		{[]string{"max-age=abc"}, d(want{maxAgeInvalid: true})},
		{[]string{"max-age=-1"}, d(want{maxAgeInvalid: true})},
		{[]string{"max-age=1.5"}, d(want{maxAgeInvalid: true})},
		{[]string{"max-age"}, d(want{maxAgeInvalid: true})},
		{[]string{"max-age=60", "max-age=60"}, d(want{maxAge: 60})},
		{[]string{"max-age=60, max-age=10"}, d(want{maxAgeInvalid: true})},
		{[]string{"max-age=99999999999999999999"}, d(want{maxAge: maxDelta})},
		{[]string{"s-maxage=5, max-age=1"}, d(want{maxAge: 1, sMaxAge: 5})},
		{[]string{`no-cache="Set-Cookie, X-Foo", max-age=5`}, d(want{noCache: true, maxAge: 5})},
		{[]string{`private="a,b"`}, d(want{private: true})},
		{[]string{"no-store,,  ,must-revalidate"}, d(want{noStore: true, mustRevalidate: true})},
		{[]string{"stale-while-revalidate=30, stale-if-error=60"}, d(want{swr: 30, sie: 60})},
		{[]string{`ext="quoted, with comma", max-age=7`}, d(want{maxAge: 7})},
		{[]string{`ext="unterminated, max-age=7`}, d(want{})},
		{[]string{"ſ-maxage=5"}, d(want{})}, // no Unicode case folding onto ASCII
		{nil, d(want{})},
	}
	for _, tc := range cases {
		cc := parseCacheControl(tc.in)
		got := want{cc.maxAge, cc.sMaxAge, cc.staleWhileReval, cc.staleIfError, cc.maxAgeInvalid,
			cc.noStore, cc.noCache, cc.private, cc.public, cc.mustRevalidate}
		if got != tc.want {
			t.Errorf("parseCacheControl(%q):\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestInvalidMaxAgeIsStale(t *testing.T) {
	// RFC 9111 4.2.1: an invalid max-age means stale, and Expires is not
	// consulted instead.
	h := http.Header{"Cache-Control": {"max-age=oops"}, "Expires": {time.Now().Add(time.Hour).Format(http.TimeFormat)}}
	if got := freshnessLifetime(parseCacheControl(h["Cache-Control"]), h, time.Now(), true); got != 0 {
		t.Errorf("lifetime %v, want 0", got)
	}
}

// asciiUpper upper-cases ASCII letters only.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzParseCacheControl checks that the parser never panics, keeps its
// values in range, and ignores the case of directive names.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60", "public, max-age=3600", `no-cache="Set-Cookie"`, "s-maxage=0, must-revalidate",
		"max-age=abc", `max-age="10"`, "max-age=1, max-age=2", "stale-while-revalidate=30, stale-if-error=60",
		`a="\"x\\", max-age=5`, ",,,", "max-age=99999999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cc := parseCacheControl([]string{s})
		for name, v := range map[string]int64{"max-age": cc.maxAge, "s-maxage": cc.sMaxAge, "max-stale": cc.maxStale,
			"min-fresh": cc.minFresh, "swr": cc.staleWhileReval, "sie": cc.staleIfError} {
			if v < -1 || v > maxDelta {
				t.Fatalf("%q: %s = %d out of range", s, name, v)
			}
		}
		if cc.maxAgeInvalid && cc.maxAge != 0 {
			t.Fatalf("%q: invalid max-age kept value %d", s, cc.maxAge)
		}
		// Directive names are case-insensitive. Quoted values may change
		// under upper-casing, so compare only when there are none.
		if !strings.Contains(s, `"`) {
			up := parseCacheControl([]string{asciiUpper(s)})
			if up.maxAge != cc.maxAge || up.sMaxAge != cc.sMaxAge || up.noStore != cc.noStore ||
				up.noCache != cc.noCache || up.private != cc.private || up.public != cc.public {
				t.Fatalf("%q: case changes the result: %+v vs %+v", s, cc, up)
			}
		}
		// Splitting into two field lines at a comma changes nothing.
		if i := strings.IndexByte(s, ','); i >= 0 && !strings.Contains(s, `"`) {
			two := parseCacheControl([]string{s[:i], s[i+1:]})
			if two.maxAge != cc.maxAge || two.noStore != cc.noStore || two.private != cc.private {
				t.Fatalf("%q: split at comma changes the result", s)
			}
		}
	})
}
