package proxy

import (
	"strings"
	"testing"
)

// FuzzParseUpstream: any string either fails with an error naming the field
// or yields an upstream the transport can address.
func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:8081", "https://app.test", "http://[::1]:80/",
		"unix:/run/app.sock weight=3", "http://h:1 weight=1000", "http://h:1 weight=0",
		"http//x", "ftp://x", "http://user@h", "http://h/p?q#f", "unix:rel.sock",
		"http://h:99999", "http://:80", " weight=2", "http://h weight=2 weight=3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUpstream(3, s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "proxy.upstreams[3]: ") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		if u.weight < 1 || u.weight > 1000 {
			t.Fatalf("weight %d", u.weight)
		}
		if u.scheme != "http" && u.scheme != "https" {
			t.Fatalf("scheme %q", u.scheme)
		}
		if u.host == "" || strings.ContainsAny(u.host, "/?#@ \t\r\n") {
			t.Fatalf("host %q from %q", u.host, s)
		}
		if u.unixPath == "" && u.hostHeader != u.host {
			t.Fatalf("host header %q != host %q", u.hostHeader, u.host)
		}
	})
}

// FuzzClientIP: the address part never contains the port separator of an
// IPv4 peer and never panics.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4:5", "[::1]:80", "@", "", ":", "[]:1", "[::1]", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip := clientIP(s)
		if len(ip) > len(s) {
			t.Fatalf("clientIP(%q) = %q", s, ip)
		}
	})
}
