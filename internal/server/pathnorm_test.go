package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portico/internal/config"
	"portico/internal/enginetest"
)

// The path is normalised before routing (package reqpath): dot segments
// resolve and slashes merge as in nginx, and only what climbs above the
// root or hides a dot segment is a 400.
func TestPathsAreNormalisedBeforeRouting(t *testing.T) {
	s := testSite("s", map[string]http.Handler{"/static/": textHandler("static"), "/admin/": textHandler("admin"), "/": textHandler("root")})
	tests := []struct {
		target string
		status int
		body   string
	}{
		{"/static/../admin/x", 200, "admin /admin/x"},
		{"/static/./x", 200, "static /static/x"},
		{"//static//x", 200, "static /static/x"},
		{"/a/%2e%2e/static/x", 200, "static /static/x"},
		{"/a/.%2E/admin/", 200, "admin /admin/"},
		{"/static/x/..", 200, "static /static/"},
		{"/static/x/.", 200, "static /static/x/"},
		{"/static/..", 200, "root /"},
		{"/static/.well-known/x", 200, "static /static/.well-known/x"},
		{"/a..b", 200, "root /a..b"},
		{"/static/a%2Fb", 200, "static /static/a/b"}, // %2F is not a separator, and stays decoded in Path
		{"/..", 400, ""},
		{"/static/../../admin", 400, ""},
		{"/%2e%2e/admin", 400, ""},
		{"/static/..%2f..%2fadmin", 400, ""},
		{"/static/..%5cadmin", 400, ""},
		{"/static/..\\admin", 400, ""},
		{"/static/..;/admin", 400, ""},
		{"/x%00y", 400, ""},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
		if rec.Code != tc.status || tc.body != "" && rec.Body.String() != tc.body {
			t.Errorf("GET %s: %d %q, want %d %q", tc.target, rec.Code, rec.Body.String(), tc.status, tc.body)
		}
	}
}

// A rewrite's target goes through the same rule: its dot segments
// resolve, and one that climbs above the root is a 400.
func TestRewriteTargetIsNormalised(t *testing.T) {
	s := testSite("s", map[string]http.Handler{"/new/": textHandler("new"), "/": textHandler("root")})
	rws, err := buildRewrites([]config.Rewrite{{From: "^/old/(.*)$", To: "/new/x/../$1"}, {From: "^/up/(.*)$", To: "/../$1"}})
	if err != nil {
		t.Fatal(err)
	}
	s.rewrites = rws
	for target, want := range map[string]string{"/old/a": "200 new /new/a", "/up/a": "400 "} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		got := fmt.Sprintf("%d %s", rec.Code, rec.Body.String())
		if rec.Code == 400 {
			got = "400 "
		}
		if got != want {
			t.Errorf("GET %s: %q, want %q", target, got, want)
		}
	}
}

// Both engines give the same answer for the same odd paths, through a real
// tree: static files (served on the fast path once normalised), a proxy
// (the upstream gets the normalised path, with the client's escapes and
// query), a proxy with strip_prefix, and CGI (PATH_INFO normalised,
// REQUEST_URI as sent).
func TestEnginesAgreeOnOddPaths(t *testing.T) {
	f := startOddPathsSite(t)
	tests := []struct {
		target   string
		wantFast bool
		status   int
		body     string
	}{
		{"/sub/../a.txt", true, 200, "file a"},
		{"//sub///b.txt", true, 200, "file b"},
		{"/./a.txt", true, 200, "file a"},
		{"/x/%2e%2e/a.txt", true, 200, "file a"},
		{"/api/../a.txt", true, 200, "file a"},
		{"/sub/../missing", true, 404, ""},
		// The proxy forwards the normalised path, escapes and query kept.
		{"/static/../api/x", true, 200, "up /api/x"},
		{"//api//v1/../users?q=a/../b", true, 200, "up /api/users?q=a/../b"},
		{"/api/x%2Fy/./z%3F?", true, 200, "up /api/x%2Fy/z%3F?"},
		{"/api/a/..", true, 200, "up /api/"},
		{"/api/plain%20path", true, 200, "up /api/plain%20path"},
		{"/strip/a/../b?k=v", true, 200, "up /b?k=v"},
		{"/strip//x//y", true, 200, "up /x/y"},
		// CGI: PATH_INFO from the normalised path, REQUEST_URI as sent.
		{"/cgi-bin/./env.sh/p/../q", false, 200, "/cgi-bin/env.sh|/q|/cgi-bin/./env.sh/p/../q"},
		{"/a/../cgi-bin//env.sh", false, 200, "/cgi-bin/env.sh||/a/../cgi-bin//env.sh"},
		// Refused: net/http answers 400 for both.
		{"/..", false, 400, ""},
		{"/sub/../../a.txt", false, 400, ""},
		{"/%2e%2e/a.txt", false, 400, ""},
		{"/..%2fa.txt", false, 400, ""},
		{"/sub/..%5c..%5ca.txt", false, 400, ""},
		{"/api/..;/x", false, 400, ""},
		{"/%00/../a.txt", false, 400, ""},
	}
	for _, tc := range tests {
		res := f.Same(t, tc.wantFast, enginetest.GET(tc.target, "x"))[0]
		if res.Status != tc.status || tc.body != "" && res.Body != tc.body {
			t.Errorf("GET %s: %d %q, want %d %q", tc.target, res.Status, res.Body, tc.status, tc.body)
		}
	}
}

// startOddPathsSite builds a real tree (static files with a secret just
// outside the root, CGI, a proxy, a proxy with strip_prefix; the upstream
// answers the target it received) and serves its site through both
// engines.
func startOddPathsSite(tb testing.TB) *enginetest.Fronts {
	dir, err := os.MkdirTemp("", "portico-pathnorm-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // scripts run as nobody when the tests run as root
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "up %s", r.RequestURI) // the target as it came on the wire
	}))
	tb.Cleanup(up.Close)
	files := map[string]string{
		"public/a.txt":     "file a",
		"secret.txt":       "TOP SECRET",
		"public/sub/b.txt": "file b",
		"cgi-bin/env.sh":   "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s|%s|%s' \"$SCRIPT_NAME\" \"$PATH_INFO\" \"$REQUEST_URI\"\n",
		"portico.toml": `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:1"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = ["` + up.URL + `"] }
  [[site.route]]
  path = "/strip/"
  strip_prefix = true
  proxy = { upstreams = ["` + up.URL + `"] }
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "portico.toml"))
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := Build(cfg, Deps{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tr.Close(context.Background()) })
	st := tr.byListener[config.ListenerKey("127.0.0.1:1")].lookup("x")
	f := enginetest.Start(tb, st, nil)
	return f
}

// FuzzEnginesAgreeOnPaths sends a request for each path to both engines:
// the whole answers must be equal, and the file outside the static root
// never leaks.
func FuzzEnginesAgreeOnPaths(f *testing.F) {
	for _, s := range []string{
		"/a.txt", "/sub/../a.txt", "//sub//b.txt", "/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt",
		"/sub/..\\..\\secret.txt", "/api/..;/x", "/api/x/../y?q=/../", "/strip//a/./b", "/x/%2E%2e/sub/", "/sub/.",
	} {
		f.Add(s)
	}
	fronts := startOddPathsSite(f)
	f.Fuzz(func(t *testing.T, p string) {
		if len(p) == 0 || p[0] != '/' || len(p) > 200 {
			return
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c <= ' ' || c >= 0x7f || c == '#' {
				return // not a request-target byte this test is about
			}
		}
		if _, err := url.ParseRequestURI(p); err != nil {
			return // net/http's own 400, before portico runs (no Date)
		}
		raw := enginetest.GET(p, "x")
		a := enginetest.Do(t, fronts.Fast, raw)[0]
		b := enginetest.Do(t, fronts.Normal, raw)[0]
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("GET %s:\nfast:   %+v\nnormal: %+v", p, a, b)
		}
		if strings.Contains(a.Body, "TOP SECRET") {
			t.Fatalf("GET %s served the file outside the root", p)
		}
	})
}
