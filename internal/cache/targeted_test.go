package cache

import (
	"net/http"
	"testing"
	"time"

	"portico/internal/config"
)

func TestValidTargeted(t *testing.T) {
	for in, want := range map[string]bool{
		"max-age=60":                  true,
		"max-age=60, no-store":        true,
		"private, s-maxage=10;x=?1":   true,
		"":                            true,
		"max-age=10000, &&&&&":        false, // RFC 9213 2.1: not a dictionary
		`max-age="10000"`:             false, // wrong type
		"max-age=1.5":                 false,
		"max-age=60,":                 false,
		"Max-Age=60":                  false, // keys are lower case
		`foo="a\"b", bar=:aGk=:, baz`: true,
		"foo=1.2345":                  false,
	} {
		if got := validTargeted([]string{in}); got != want {
			t.Errorf("validTargeted(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzValidTargeted(f *testing.F) {
	for _, s := range []string{"max-age=60", `a="x", b=?0;c=1.5`, "&&", ":YQ==:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validTargeted([]string{s}) {
			_ = parseCacheControl([]string{s})
		}
	})
}

// RFC 9213 section 2.1: a valid targeted field replaces Cache-Control for
// portico, Portico-Cache-Control before CDN-Cache-Control; the first does
// not reach the client, CDN-Cache-Control and Cache-Control do.
func TestRFC9213TargetedFields(t *testing.T) {
	cases := []struct {
		name     string
		hdr      []string
		wantHits int64 // origin hits after two requests
	}{
		{"RFC9213 CDN-Cache-Control max-age beats Cache-Control no-store", []string{"Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=60"}, 1},
		{"RFC9213 CDN-Cache-Control private beats Cache-Control max-age", []string{"Cache-Control", "max-age=60", "Cdn-Cache-Control", "private"}, 2},
		{"RFC9213 CDN-Cache-Control no-store", []string{"Cache-Control", "max-age=60", "Expires", "Thu, 01 Jan 2099 00:00:00 GMT", "Cdn-Cache-Control", "no-store"}, 2},
		{"RFC9213 Portico-Cache-Control beats CDN-Cache-Control", []string{"Cdn-Cache-Control", "no-store", "Portico-Cache-Control", "max-age=60"}, 1},
		{"RFC9213 an invalid targeted field is ignored", []string{"Cache-Control", "no-store", "Cdn-Cache-Control", `max-age="60"`}, 2},
		{"RFC9213 CDN-Cache-Control max-age=0 beats a future Expires", []string{"Expires", "Thu, 01 Jan 2099 00:00:00 GMT", "Cdn-Cache-Control", "max-age=0"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			o := newOrigin(clock, 200, "x", tc.hdr...)
			h := newTestCache(t, config.Cache{}, o, clock)
			for range 2 {
				res := do(h, "GET", "http://a.test/t")
				if res.Header.Get("Portico-Cache-Control") != "" {
					t.Errorf("Portico-Cache-Control reached the client (Cache-Status %q)", res.Header.Get("Cache-Status"))
				}
				if v := http.Header(o.header).Get("Cdn-Cache-Control"); res.Header.Get("Cdn-Cache-Control") != v {
					t.Errorf("CDN-Cache-Control %q, want the upstream's %q", res.Header.Get("Cdn-Cache-Control"), v)
				}
				if cc := http.Header(o.header).Get("Cache-Control"); cc != "" && res.Header.Get("Cache-Control") != cc {
					t.Errorf("Cache-Control %q, want the upstream's %q", res.Header.Get("Cache-Control"), cc)
				}
				clock.Advance(time.Second)
			}
			if got := o.hits.Load(); got != tc.wantHits {
				t.Errorf("origin hits %d, want %d", got, tc.wantHits)
			}
		})
	}
}
