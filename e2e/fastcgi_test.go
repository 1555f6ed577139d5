package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portico/internal/fastcgi/fpmtest"
)

// TestFastCGIPHP runs a PHP front-controller app through the real binary
// and a real php-fpm: pretty URLs, static files beside the scripts (the
// fallback and a static route for /assets/), a form POST, the traps of
// path splitting, and php-fpm going down.
func TestFastCGIPHP(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"public/index.php": `<?php
header('Content-Type: text/plain');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($_SERVER['REQUEST_METHOD'] === 'POST') { echo "posted ", $_POST['title'] ?? ''; exit; }
echo "app route ", $path, " via ", $_SERVER['SCRIPT_NAME'];
`,
		"public/robots.txt":      "User-agent: *\n",
		"public/cgi-bin/hi.py":   "#!/usr/bin/python3\nSECRET_SOURCE = 1\n",
		"public/assets/app.css":  "body{}",
		"public/upload/evil.jpg": `<?php touch(__DIR__ . "/../../RAN"); echo "EVIL";`,
		"outside.php":            `<?php touch(__DIR__ . "/RAN"); echo "OUTSIDE";`,
	})
	_, stopFPM := fpmtest.Start(t, dir, 2, "")
	p := startConfig(t, dir, `
[server]
access_log = "off"

[[site]]
listen = ["127.0.0.1:0"]

  [[site.route]]
  path = "/"
  fastcgi = { upstream = "unix:fpm.sock", root = "public", max_conns = 2 }

  [[site.route]]
  path = "/assets/"
  static = { root = "public/assets", cache_control = "max-age=60" }

  [[site.route]]
  path = "/scripts/"
  cgi = { root = "public/cgi-bin" }
`, 1)

	tests := []struct {
		path, status, body string
	}{
		{"/posts/7?x=1", "200", "app route /posts/7 via /index.php"},
		{"/", "200", "app route / via /index.php"},
		{"/robots.txt", "200", "User-agent: *\n"},
		{"/assets/app.css", "200", "body{}"},
		{"/upload/evil.jpg/x.php", "404", ""},
		{"/nope.php", "404", ""},
		// A cgi root inside the PHP root: its sources are never files.
		{"/cgi-bin/hi.py", "404", ""},
	}
	for _, tc := range tests {
		resp, body := get(t, p.URL(tc.path))
		if resp.Status[:3] != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("GET %s = %s %q, want %s %q", tc.path, resp.Status, body, tc.status, tc.body)
		}
	}
	if resp, _ := get(t, p.URL("/assets/app.css")); resp.Header.Get("Cache-Control") != "max-age=60" {
		t.Errorf("the static route did not serve /assets/: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	for _, raw := range []string{"/../outside.php", "/%2e%2e/outside.php", "/upload/evil.jpg%2fx.php"} {
		out := rawRequest(t, p, "GET "+raw+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(out, "OUTSIDE") || strings.Contains(out, "EVIL") {
			t.Errorf("GET %s ran a script it must not:\n%s", raw, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "RAN")); err == nil {
		t.Error("a script outside the root, or a non-script file, ran")
	}
	form := url.Values{"title": {"hello world"}}
	resp, body := do(t, "POST", p.URL("/articles"), strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != 200 || body != "posted hello world" {
		t.Errorf("form POST = %d %q", resp.StatusCode, body)
	}

	stopFPM()
	if resp, _ := get(t, p.URL("/posts/7")); resp.StatusCode != 502 {
		t.Errorf("php-fpm down: %d, want 502", resp.StatusCode)
	}
	// The error log is copied from portico's stderr as it comes: wait.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Stderr.String(), "cannot reach the responder"); {
		if time.Now().After(deadline) {
			t.Fatalf("no error log line for php-fpm down:\n%s", p.Stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFastCGIFastPathParams: a PHP page served by the lean engine (a GET
// from an HTTP/1.1 client) sees what net/http's path gives it: the
// server's X-Request-ID (the one the response carries), the client behind
// a trusted proxy, the port the request came on; a POST (net/http's path)
// on the same connection sees the same.
func TestFastCGIFastPathParams(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"public/index.php": `<?php
header('Content-Type: text/plain');
foreach (['HTTP_X_REQUEST_ID', 'REMOTE_ADDR', 'SERVER_PORT', 'REQUEST_METHOD', 'HTTP_PROXY'] as $k) {
	echo $k, "=", $_SERVER[$k] ?? '<unset>', "\n";
}
`,
	})
	fpmtest.Start(t, dir, 2, "")
	p := startConfig(t, dir, `
[server]
access_log = "off"
request_id = "generate"
trusted_proxies = ["127.0.0.1"]

[[site]]
listen = ["127.0.0.1:0"]

  [[site.route]]
  path = "/"
  fastcgi = { upstream = "unix:fpm.sock", root = "public", max_conns = 2 }
`, 1)
	port := p.URLs[0][strings.LastIndex(p.URLs[0], ":")+1:]
	port = strings.TrimSuffix(port, "/")
	for _, method := range []string{"GET", "POST"} {
		resp, body := do(t, method, p.URL("/posts/7"), strings.NewReader(""),
			"X-Forwarded-For", "203.0.113.7", "X-Request-Id", "from-client", "Proxy", "http://evil.test")
		id := resp.Header.Get("X-Request-Id")
		for _, want := range []string{
			"HTTP_X_REQUEST_ID=" + id + "\n",
			"REMOTE_ADDR=203.0.113.7\n",
			"SERVER_PORT=" + port + "\n",
			"REQUEST_METHOD=" + method + "\n",
			"HTTP_PROXY=<unset>\n",
		} {
			if id == "" || id == "from-client" || !strings.Contains(body, want) {
				t.Errorf("%s: X-Request-Id %q; body lacks %q:\n%s", method, id, want, body)
			}
		}
	}
}
