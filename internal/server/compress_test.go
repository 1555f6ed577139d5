package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"portico/internal/config"
	"portico/internal/enginetest"
)

// TestEnginesAgreeOnCompression serves compressed static files, a cached
// compressed proxy route, an uncached one and a rewrite through both
// engines and compares whole responses: static variants and cache hits
// whose Accept-Encoding is the token stay on the fast path; the rest is
// net/http's, with the same answer.
func TestEnginesAgreeOnCompression(t *testing.T) {
	var upHits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, `{"path":%q,"pad":%q}`, r.URL.Path, strings.Repeat("x", 2000))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	js := strings.Repeat("function f(a) { return a + 1; }\n", 200)
	files := map[string]string{
		"public/app.js":     js,
		"public/small.css":  "a{}",
		"public/index.html": "<h1>home</h1>" + strings.Repeat("<p>text</p>", 200),
		"portico.toml": `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:1"]
compress = ["zstd", "br", "gzip"]
  [[site.header_rules]]
  set = { "X-Site-Rule" = "1" }
  [[site.rewrite]]
  from = "^/js$"
  to = "/app.js"
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route]]
  path = "/cached/"
  proxy = { upstreams = ["` + up.URL + `"] }
  cache = {}
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = ["` + up.URL + `"] }
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
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

	// Fill the cache with the gzip and br variants.
	enginetest.Do(t, f.Normal, enginetest.GET("/cached/p", "x", "Accept-Encoding: gzip"), enginetest.GET("/cached/p", "x", "Accept-Encoding: br"))
	// The first request of each static variant compresses it.
	for _, ae := range []string{"gzip", "br", "zstd"} {
		enginetest.Do(t, f.Normal, enginetest.GET("/app.js", "x", "Accept-Encoding: "+ae))
	}
	etag := enginetest.Do(t, f.Normal, enginetest.GET("/app.js", "x", "Accept-Encoding: br"))[0].Header.Get("ETag")

	cases := []struct {
		raw      string
		wantFast bool
		wantCE   string
	}{
		{enginetest.GET("/app.js", "x", "Accept-Encoding: gzip"), true, "gzip"},
		{enginetest.GET("/app.js", "x", "Accept-Encoding: gzip, deflate, br, zstd"), true, "zstd"},
		{enginetest.GET("/app.js", "x", "Accept-Encoding: br;q=1, gzip;q=0.5"), true, "br"},
		{enginetest.GET("/app.js", "x"), true, ""},
		{enginetest.GET("/app.js", "x", "Accept-Encoding: gzip", "Range: bytes=0-9"), true, ""},
		{enginetest.GET("/app.js", "x", "Accept-Encoding: br", "If-None-Match: "+etag), true, ""},
		{enginetest.GET("/small.css", "x", "Accept-Encoding: gzip"), true, ""},
		{"HEAD /app.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", true, "gzip"},
		{enginetest.GET("/cached/p", "x", "Accept-Encoding: gzip"), true, "gzip"},
		{enginetest.GET("/cached/p", "x", "Accept-Encoding: br"), true, "br"},
		{enginetest.GET("/cached/p", "x", "Accept-Encoding: gzip, deflate"), true, "gzip"}, // normalised on the fast path too
		{enginetest.GET("/cached/p", "x", "Accept-Encoding: gzip, deflate, br"), true, "br"},
		{enginetest.GET("/api/p", "x", "Accept-Encoding: gzip"), false, "gzip"},
		{enginetest.GET("/js", "x", "Accept-Encoding: gzip"), false, "gzip"}, // rewritten on net/http
	}
	for _, tc := range cases {
		res := f.Same(t, tc.wantFast, tc.raw)
		h := res[0].Header
		if got := h.Get("Content-Encoding"); got != tc.wantCE {
			t.Errorf("%q: Content-Encoding %q, want %q (status %d)", tc.raw, got, tc.wantCE, res[0].Status)
		}
		// A static file too small to compress does not vary.
		if wantVary := !strings.Contains(tc.raw, "small.css"); strings.Contains(h.Get("Vary"), "Accept-Encoding") != wantVary {
			t.Errorf("%q: Vary %q, want Accept-Encoding: %v", tc.raw, h.Get("Vary"), wantVary)
		}
		if h.Get("X-Site-Rule") != "1" {
			t.Errorf("%q: site header rule missing", tc.raw)
		}
	}
	// The cache asked the upstream once per variant, and once per
	// uncached request.
	if n := upHits.Load(); n != 2+2 {
		t.Errorf("upstream asked %d times, want 4 (gzip and br variants, two uncached)", n)
	}
}
