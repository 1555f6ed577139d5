package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestHTTP3 fetches the same pages over HTTP/3 (QUIC) and HTTP/2 from a TLS
// site and compares them; the TCP answers advertise HTTP/3 with Alt-Svc,
// and http3 = false turns both off.
func TestHTTP3(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, "h3.test")
	writeFiles(t, dir, map[string]string{"c.pem": cert, "c.key": key,
		"public/index.html": "<h1>over quic</h1>", "public/big.txt": strings.Repeat("0123456789abcdef", 64<<10)})
	site := func(name string, port int, extra string) string {
		return fmt.Sprintf(`
[[site]]
name = %q
listen = ["127.0.0.1:%d"]
tls = { cert = "c.pem", key = "c.key" }
headers = { "X-Site" = %q }
%s
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, name, port, name, extra)
	}
	on, off := freePort(t), freePort(t)
	startConfig(t, dir, "[server]\naccess_log = \"off\"\n"+site("on", on, "")+site("off", off, "http3 = false"), 2)
	tlsCfg := &tls.Config{InsecureSkipVerify: true, ServerName: "h3.test"}
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: tlsCfg}}
	h3tr := &http3.Transport{TLSClientConfig: tlsCfg}
	defer h3tr.Close()
	h3 := &http.Client{Timeout: 10 * time.Second, Transport: h3tr}
	fetch := func(c *http.Client, url string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/", "/big.txt", "/missing"} {
		url := fmt.Sprintf("https://127.0.0.1:%d%s", on, path)
		r2, b2 := fetch(h2, url)
		r3, b3 := fetch(h3, url)
		if r2.ProtoMajor != 2 || r3.ProtoMajor != 3 {
			t.Fatalf("%s: protocols %s and %s, want HTTP/2 and HTTP/3", path, r2.Proto, r3.Proto)
		}
		if r2.StatusCode != r3.StatusCode || b2 != b3 || r2.Header.Get("ETag") != r3.Header.Get("ETag") ||
			r2.Header.Get("Content-Type") != r3.Header.Get("Content-Type") || r3.Header.Get("X-Site") != "on" {
			t.Errorf("%s: HTTP/2 %d (%d bytes, %q) vs HTTP/3 %d (%d bytes, %q)", path, r2.StatusCode, len(b2), r2.Header, r3.StatusCode, len(b3), r3.Header)
		}
		if want := fmt.Sprintf(`h3=":%d"; ma=86400`, on); r2.Header.Get("Alt-Svc") != want {
			t.Errorf("%s: Alt-Svc %q, want %q", path, r2.Header.Get("Alt-Svc"), want)
		}
	}
	r, _ := fetch(h2, fmt.Sprintf("https://127.0.0.1:%d/", off))
	if r.Header.Get("Alt-Svc") != "" {
		t.Errorf("http3 = false: Alt-Svc %q", r.Header.Get("Alt-Svc"))
	}
	short := &http.Client{Timeout: 2 * time.Second, Transport: &http3.Transport{TLSClientConfig: tlsCfg}}
	if resp, err := short.Get(fmt.Sprintf("https://127.0.0.1:%d/", off)); err == nil {
		resp.Body.Close()
		t.Errorf("http3 = false: HTTP/3 answered %s", resp.Proto)
	}
	t.Logf("http3: 3 pages equal over HTTP/2 and HTTP/3")
}
