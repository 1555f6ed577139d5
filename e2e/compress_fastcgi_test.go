package e2e

import (
	"strings"
	"testing"

	"portico/internal/fastcgi/fpmtest"
)

// A fastcgi route compresses what PHP prints, and its static assets once
// each (served from memory by the static handler on the fast path).
func TestCompressFastCGI(t *testing.T) {
	dir := t.TempDir()
	css := strings.Repeat(".button { color: #333; padding: 4px; }\n", 100)
	writeFiles(t, dir, map[string]string{
		"public/index.php":      "<?php header('Content-Type: text/html'); echo str_repeat('<p>hello from php</p>', 200);",
		"public/assets/app.css": css,
	})
	_, _ = fpmtest.Start(t, dir, 2, "")
	p := startConfig(t, dir, `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
compress = ["br", "gzip"]
  [[site.route]]
  path = "/"
  fastcgi = { upstream = "unix:fpm.sock", root = "public" }
`, 1)
	resp, body := fetchRaw(t, "GET", p.URL("/posts/1"), "Accept-Encoding", "gzip")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || string(decode(t, "gzip", body)) != strings.Repeat("<p>hello from php</p>", 200) {
		t.Errorf("php: %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	for i := 0; i < 2; i++ {
		resp, body := fetchRaw(t, "GET", p.URL("/assets/app.css"), "Accept-Encoding", "gzip, br")
		if resp.Header.Get("Content-Encoding") != "br" || string(decode(t, "br", body)) != css {
			t.Errorf("asset %d: Content-Encoding %q", i, resp.Header.Get("Content-Encoding"))
		}
		if etag := resp.Header.Get("ETag"); !strings.HasSuffix(etag, `-br"`) {
			t.Errorf("asset ETag %q: want the static variant's", etag)
		}
	}
}
