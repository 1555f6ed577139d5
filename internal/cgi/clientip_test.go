package cgi

import (
	"net/netip"
	"testing"

	"portico/internal/clientip"
)

// TestRemoteAddrBehindTrustedProxy: REMOTE_ADDR is the client address
// clientip decides: X-Forwarded-For from a trusted peer (without a
// port, which is the proxy's), the peer itself otherwise.
func TestRemoteAddrBehindTrustedProxy(t *testing.T) {
	for _, c := range []struct {
		trusted  string
		wantAddr string
		wantPort bool
	}{
		{"127.0.0.0/8", "198.51.100.7", false},
		{"10.0.0.0/8", "127.0.0.1", true},
	} {
		root := newRoot(t)
		linkHelper(t, root, "env")
		res := clientip.New([]netip.Prefix{netip.MustParsePrefix(c.trusted)})
		f := newFixture(t, testCfg(root), Options{Clients: res})
		rep := f.report(t, "GET", "/cgi-bin/env", nil, "X-Forwarded-For", "6.6.6.6, 198.51.100.7")
		if got := rep.Env["REMOTE_ADDR"]; got != c.wantAddr {
			t.Errorf("trusted %s: REMOTE_ADDR %q, want %q", c.trusted, got, c.wantAddr)
		}
		if _, ok := rep.Env["REMOTE_PORT"]; ok != c.wantPort {
			t.Errorf("trusted %s: REMOTE_PORT set=%v, want %v", c.trusted, ok, c.wantPort)
		}
	}
}
