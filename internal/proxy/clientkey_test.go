package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"

	"portico/internal/config"
	"portico/internal/enginetest"
)

// TestIPHashUsesTheClientBehindTrustedProxies: behind a trusted proxy,
// ip_hash spreads clients by their X-Forwarded-For address (not the one
// proxy's), the same on both engines; from an untrusted peer the header
// changes nothing.
func TestIPHashUsesTheClientBehindTrustedProxies(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, name)
		})
	}
	a, b := startUpstream(t, named("a")), startUpstream(t, named("b"))
	cfg := config.Proxy{Upstreams: []string{a.URL, b.URL}, Balance: "ip_hash"}
	for _, trusted := range []bool{true, false} {
		var opts Options
		if trusted {
			opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}
		h := newHandler(t, cfg, opts)
		f := enginetest.Start(t, h, nil)
		seen := map[string]bool{}
		for i := 0; i < 16; i++ {
			raw := enginetest.GET("/", "x", fmt.Sprintf("X-Forwarded-For: 198.51.100.%d", i))
			r := f.Same(t, true, raw)
			seen[r[0].Body] = true
			// One client, one upstream.
			if again := f.Same(t, true, raw); again[0].Body != r[0].Body {
				t.Errorf("trusted=%v: client %d moved from %s to %s", trusted, i, r[0].Body, again[0].Body)
			}
		}
		if trusted && len(seen) != 2 {
			t.Errorf("behind a trusted proxy 16 clients used upstreams %v, want both", seen)
		}
		if !trusted && len(seen) != 1 {
			t.Errorf("an untrusted peer's X-Forwarded-For moved it between upstreams %v", seen)
		}
	}
}
