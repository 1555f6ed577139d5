package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClient(t *testing.T) {
	r := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	cases := []struct {
		name     string
		remote   string
		xff      []string
		want     string
		fromPeer bool
	}{
		{"untrusted peer ignores xff", "203.0.113.9:4000", []string{"1.2.3.4"}, "203.0.113.9", true},
		{"trusted peer, no xff", "10.0.0.1:4000", nil, "10.0.0.1", true},
		{"trusted peer, one hop", "10.0.0.1:4000", []string{"198.51.100.7"}, "198.51.100.7", false},
		{"spoofed left part skipped", "10.0.0.1:4000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7", false},
		{"trusted chain", "10.0.0.1:4000", []string{"198.51.100.7, 10.2.3.4"}, "198.51.100.7", false},
		{"two fields, last appended last", "10.0.0.1:4000", []string{"6.6.6.6", "198.51.100.7,10.9.9.9"}, "198.51.100.7", false},
		{"all trusted: leftmost", "10.0.0.1:4000", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1", false},
		{"garbage stops at last trusted", "10.0.0.1:4000", []string{"1.1.1.1, nonsense"}, "10.0.0.1", true},
		{"element with port", "10.0.0.1:4000", []string{"198.51.100.7:1234"}, "198.51.100.7", false},
		{"ipv6 peer trusted", "[::1]:4000", []string{"2001:db8::1"}, "2001:db8::1", false},
		{"mapped peer", "[::ffff:10.0.0.1]:4000", []string{"198.51.100.7"}, "198.51.100.7", false},
		{"empty elements", "10.0.0.1:4000", []string{" , 198.51.100.7 ,, "}, "198.51.100.7", false},
		{"unix peer", "@", []string{"1.2.3.4"}, "invalid IP", true},
	}
	for _, c := range cases {
		got, fromPeer := r.Client(c.remote, c.xff)
		if got.String() != c.want || fromPeer != c.fromPeer {
			t.Errorf("%s: got %s (fromPeer %v), want %s (%v)", c.name, got, fromPeer, c.want, c.fromPeer)
		}
	}
}

func TestNilResolverTrustsNobody(t *testing.T) {
	var r *Resolver
	got, _ := r.Client("10.0.0.1:80", []string{"1.2.3.4"})
	if got.String() != "10.0.0.1" {
		t.Errorf("got %s, want the peer", got)
	}
}

func TestHostPort(t *testing.T) {
	r := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	req, _ := http.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	if h, p := r.HostPort(req); h != "127.0.0.1" || p != "5555" {
		t.Errorf("no xff: got %q %q", h, p)
	}
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	if h, p := r.HostPort(req); h != "192.0.2.1" || p != "" {
		t.Errorf("xff: got %q %q, want 192.0.2.1 and no port", h, p)
	}
}

func TestClientDoesNotAllocate(t *testing.T) {
	r := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	xff := []string{"6.6.6.6, 198.51.100.7, 10.0.0.3"}
	n := testing.AllocsPerRun(100, func() { r.Client("10.0.0.1:4000", xff) })
	if n != 0 {
		t.Errorf("Client allocates %v times", n)
	}
}

func FuzzClient(f *testing.F) {
	f.Add("10.0.0.1:80", "1.2.3.4, 10.0.0.2")
	f.Add("[::1]:80", "[2001:db8::1]:443,,")
	f.Add("x", "")
	r := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	f.Fuzz(func(t *testing.T, remote, xff string) {
		a, fromPeer := r.Client(remote, []string{xff})
		if fromPeer && a != Peer(remote) {
			t.Fatalf("fromPeer but %s is not the peer %s", a, Peer(remote))
		}
		if !r.Trusted(Peer(remote)) && a != Peer(remote) {
			t.Fatalf("untrusted peer %q, but client %s", remote, a)
		}
	})
}
