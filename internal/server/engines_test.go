package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"portico/internal/config"
	"portico/internal/enginetest"
)

// TestEnginesAgreeOnEveryHandlerKind builds a real tree from a config with
// a route of every handler kind, each with a header-rule layer on top,
// serves its site through both engines and compares whole responses. The
// fast path must keep serving static files, proxy answers and cache hits
// with the layer on; the others it hands to net/http.
func TestEnginesAgreeOnEveryHandlerKind(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed (bash .ci/run installs it)")
	}
	// Scripts run as nobody when the tests run as root: a folder all can read.
	dir, err := os.MkdirTemp("", "portico-engines-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("X-Upstream", "1")
		fmt.Fprintf(w, "up %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(up.Close)
	files := map[string]string{
		"public/index.html":    "<h1>home</h1>",
		"public/assets/app.js": strings.Repeat("console.log(1);\n", 64),
		"cgi-bin/hello.sh":     "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-Script: 1\\r\\n\\r\\nhello from %s\\n' \"$PATH_INFO\"\n",
		"app/app.py":           "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-App', '1')])\n    return [b'wsgi ' + environ['PATH_INFO'].encode()]\n",
		"portico.toml": `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:1"]
headers = { "X-Frame-Options" = "DENY", "X-Site" = "s" }
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route.headers]]
  match = "/assets/**"
  set = { "Cache-Control" = "public, max-age=31536000, immutable" }
  remove = ["X-Site"]
  [[site.route.headers]]
  match = "/index.html"
  set = { "Cache-Control" = "no-cache" }
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
  [[site.route.headers]]
  add = { "X-Layer" = "cgi" }
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = ["` + up.URL + `"] }
  [[site.route.headers]]
  set = { "X-Layer" = "proxy" }
  remove = ["X-Upstream"]
  [[site.route]]
  path = "/cached/"
  proxy = { upstreams = ["` + up.URL + `"] }
  [site.route.cache]
  [[site.route.headers]]
  set = { "X-Layer" = "cache" }
  [[site.route]]
  path = "/app/"
  wsgi = { app = "app:application", dir = "app", workers = 1, python = "` + python + `" }
  [[site.route.headers]]
  set = { "X-Layer" = "wsgi" }
  [[site.route]]
  path = "/old/"
  redirect = { to = "/new/{path}", status = 301 }
  [[site.route.headers]]
  set = { "X-Layer" = "redirect" }
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "portico.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Build(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	st := tr.byListener[config.ListenerKey("127.0.0.1:1")].lookup("x")
	f := enginetest.Start(t, st, nil)

	cases := []struct {
		raw      string
		wantFast bool
		field    string // a field the layer must have set
		value    string
		warm     string // a path of the cached route to fill just before
	}{
		{enginetest.GET("/assets/app.js", "x"), true, "Cache-Control", "public, max-age=31536000, immutable", ""},
		{enginetest.GET("/assets/app.js", "x", "Range: bytes=0-9"), true, "Cache-Control", "public, max-age=31536000, immutable", ""},
		{enginetest.GET("/index.html", "x"), true, "Cache-Control", "no-cache", ""},
		{enginetest.GET("/", "x"), true, "X-Site", "s", ""},
		{enginetest.GET("/api/users", "x"), true, "X-Layer", "proxy", ""},
		{"HEAD /api/users HTTP/1.1\r\nHost: x\r\n\r\n", true, "X-Layer", "proxy", ""},
		// Each cached case fills its own page just before, so that both
		// engines see the same Age (it counts seconds since the fill).
		{enginetest.GET("/cached/page", "x"), true, "X-Layer", "cache", "/cached/page"},
		{"HEAD /cached/head HTTP/1.1\r\nHost: x\r\n\r\n", true, "X-Layer", "cache", "/cached/head"},
		{enginetest.GET("/cached/range", "x", "Range: bytes=0-1"), false, "X-Layer", "cache", "/cached/range"},
		{enginetest.GET("/cached/reval", "x", "Cache-Control: max-age=0"), false, "X-Layer", "cache", "/cached/reval"},
		{"POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", false, "X-Layer", "cgi", ""},
		{"HEAD /old/y HTTP/1.1\r\nHost: x\r\n\r\n", false, "X-Layer", "redirect", ""},
		{enginetest.GET("/cgi-bin/hello.sh/extra", "x"), false, "X-Layer", "cgi", ""},
		{enginetest.GET("/app/x", "x"), false, "X-Layer", "wsgi", ""},
		{enginetest.GET("/old/y", "x"), false, "X-Layer", "redirect", ""},
		{enginetest.GET("/missing.txt", "x"), true, "X-Site", "s", ""},
		{enginetest.GET("/assets/missing.js", "x", "Accept: text/html"), true, "X-Site", "s", ""}, // a matching rule, as on net/http (rules leave error answers alone)
	}
	for _, tc := range cases {
		if tc.warm != "" {
			enginetest.Do(t, f.Normal, enginetest.GET(tc.warm, "x"))
		}
		res := f.Same(t, tc.wantFast, tc.raw)
		if got := res[0].Header.Get(tc.field); got != tc.value {
			t.Errorf("%q: %s = %q, want %q (status %d, header %v)", tc.raw, tc.field, got, tc.value, res[0].Status, res[0].Header)
		}
	}
	res := enginetest.Do(t, f.Fast, enginetest.GET("/assets/app.js", "x"))
	if res[0].Header.Get("X-Site") != "" {
		t.Errorf("the rule's remove kept the site header: %v", res[0].Header)
	}
	// Conditional requests under the layer: the 304 carries the layer's
	// fields on both engines.
	etag := res[0].Header.Get("Etag")
	if etag == "" {
		t.Fatalf("static answer without ETag: %v", res[0].Header)
	}
	for _, raw := range []string{
		enginetest.GET("/assets/app.js", "x", "If-None-Match: "+etag),
		enginetest.GET("/assets/app.js", "x", "If-None-Match: "+etag, "Range: bytes=0-9"),
	} {
		r := f.Same(t, true, raw)
		if r[0].Status != http.StatusNotModified || r[0].Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%q: %d %v", raw, r[0].Status, r[0].Header)
		}
	}
}
