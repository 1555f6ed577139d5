package wsgi

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"portico/internal/clientip"
)

// TestRemoteAddrBehindTrustedProxy: REMOTE_ADDR is the client address
// clientip decides: X-Forwarded-For from a trusted peer (without
// REMOTE_PORT, which would be the proxy's), the peer otherwise.
func TestRemoteAddrBehindTrustedProxy(t *testing.T) {
	for _, c := range []struct {
		trusted, wantAddr string
		wantPort          bool
	}{
		{"127.0.0.0/8", "198.51.100.7", false},
		{"10.0.0.0/8", "127.0.0.1", true},
	} {
		tp := newTestPool(t, 1, 10*time.Second)
		tp.clients = clientip.New([]netip.Prefix{netip.MustParsePrefix(c.trusted)}) // before any request
		req, _ := http.NewRequest("GET", tp.srv.URL+"/app/x", nil)
		req.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.7")
		env := tp.env(t, req)
		if got := env["REMOTE_ADDR"]; got != c.wantAddr {
			t.Errorf("trusted %s: REMOTE_ADDR %v, want %s", c.trusted, got, c.wantAddr)
		}
		if _, ok := env["REMOTE_PORT"]; ok != c.wantPort {
			t.Errorf("trusted %s: REMOTE_PORT set=%v, want %v", c.trusted, ok, c.wantPort)
		}
	}
}
