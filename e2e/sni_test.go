package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestCertificateFollowsRouting: with nested wildcards, the certificate a
// TLS handshake gets (by SNI) is that of the site the same name routes to
// as a Host, whatever the order of the sites in the file.
func TestCertificateFollowsRouting(t *testing.T) {
	dir := t.TempDir()
	aCert, aKey := selfSigned(t, "*.a.test")
	bCert, bKey := selfSigned(t, "*.b.a.test")
	dCert, dKey := selfSigned(t, "default.test")
	writeFiles(t, dir, map[string]string{
		"a.pem": aCert, "a.key": aKey, "b.pem": bCert, "b.key": bKey, "d.pem": dCert, "d.key": dKey,
		"a/index.html": "site a", "b/index.html": "site b", "d/index.html": "site d",
	})
	p := startConfig(t, dir, `
[server]
access_log = "off"
[[site]]
name = "a"
listen = ["127.0.0.1:0"]
hosts = ["*.a.test"]
tls = { cert = "a.pem", key = "a.key" }
  [[site.route]]
  path = "/"
  static = { root = "a" }
[[site]]
name = "b"
listen = ["127.0.0.1:0"]
hosts = ["*.b.a.test"]
tls = { cert = "b.pem", key = "b.key" }
  [[site.route]]
  path = "/"
  static = { root = "b" }
[[site]]
name = "d"
listen = ["127.0.0.1:0"]
tls = { cert = "d.pem", key = "d.key" }
  [[site.route]]
  path = "/"
  static = { root = "d" }
`, 1)
	for _, tc := range []struct{ name, wantCert, wantBody string }{
		{"x.b.a.test", "*.b.a.test", "site b"},
		{"y.x.b.a.test", "*.b.a.test", "site b"},
		{"x.a.test", "*.a.test", "site a"},
		{"b.a.test", "*.a.test", "site a"}, // "*.b.a.test" needs a label before ".b.a.test"
		{"other.test", "default.test", "site d"},
	} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: tc.name}}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		req, _ := http.NewRequest("GET", p.URL("/"), nil)
		req.Host = tc.name
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		got := resp.TLS.PeerCertificates[0].DNSNames[0]
		if got != tc.wantCert || string(b) != tc.wantBody {
			t.Errorf("SNI and Host %s: certificate %q, body %q; want %q, %q", tc.name, got, b, tc.wantCert, tc.wantBody)
		}
	}
}
