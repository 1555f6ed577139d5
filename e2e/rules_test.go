package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoUpstream answers with the request it got: path, query and the
// headers named in the response.
func echoUpstream(t *testing.T) (*httptest.Server, func() http.Header) {
	var mu sync.Mutex
	var last http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Request-Id", "upstream-own-id")
		fmt.Fprintf(w, "path=%s query=%s", r.URL.Path, r.URL.RawQuery)
	}))
	t.Cleanup(up.Close)
	return up, func() http.Header {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// Site header rules beside the old headers map, route rules after them,
// an SPA's fallback answer matched as /index.html, request rules with
// placeholders on what goes upstream.
func TestHeaderRulesSiteRouteSPARequest(t *testing.T) {
	up, lastHeader := echoUpstream(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"dist/index.html":    "<!doctype html><p>app</p>",
		"dist/assets/app.js": "console.log(1)",
	})
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
request_id = "generate"
[[site]]
listen = ["127.0.0.1:0"]
headers = { "X-Frame-Options" = "DENY" }
  [[site.header_rules]]
  set = { "X-Site" = "yes", "Cache-Control" = "no-store" }
  [[site.request_headers]]
  set = { "X-Client" = "{client_ip} via {host} id {request_id}" }
  remove = ["Cookie"]

  [[site.route]]
  path = "/"
  static = { root = "dist", spa = true }
  [[site.route.headers]]
  match = "/assets/**"
  set = { "Cache-Control" = "public, max-age=31536000, immutable" }
  [[site.route.headers]]
  match = "/index.html"
  set = { "Cache-Control" = "no-cache", "X-Index" = "1" }

  [[site.route]]
  path = "/api/"
  proxy = { upstreams = [%q] }
  [[site.route.request_headers]]
  match = "/api/v1/**"
  add = { "X-Api-Version" = "1" }
`, up.URL), 1)
	cases := []struct {
		path, accept, wantCC string
	}{
		{"/assets/app.js", "*/*", "public, max-age=31536000, immutable"},
		{"/index.html", "text/html", "no-cache"},
		{"/", "text/html", "no-store"},          // "/" is not "/index.html": the site's rule
		{"/some/page", "text/html", "no-cache"}, // SPA answer: counts as /index.html
	}
	for _, c := range cases {
		resp, body := get(t, p.URL(c.path), "Accept", c.accept)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, body)
			continue
		}
		if got := resp.Header.Get("Cache-Control"); got != c.wantCC {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.wantCC)
		}
		if wantIndex := c.wantCC == "no-cache"; (resp.Header.Get("X-Index") == "1") != wantIndex {
			t.Errorf("%s: X-Index %q, want the /index.html rule: %v", c.path, resp.Header.Get("X-Index"), wantIndex)
		}
		if resp.Header.Get("X-Site") != "yes" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: site headers missing: %v", c.path, resp.Header)
		}
	}
	resp, body := get(t, p.URL("/api/v1/items?x=1"), "Cookie", "secret=1", "Host", "app.test")
	if resp.StatusCode != 200 || body != "path=/api/v1/items query=x=1" {
		t.Fatalf("proxy: %d %q", resp.StatusCode, body)
	}
	h := lastHeader()
	id := resp.Header.Get("X-Request-Id")
	if want := "127.0.0.1 via app.test id " + id; h.Get("X-Client") != want {
		t.Errorf("upstream X-Client %q, want %q", h.Get("X-Client"), want)
	}
	if h.Get("Cookie") != "" || h.Get("X-Api-Version") != "1" {
		t.Errorf("upstream got Cookie %q, X-Api-Version %q", h.Get("Cookie"), h.Get("X-Api-Version"))
	}
	if h.Get("X-Request-Id") != id || len(id) != 32 {
		t.Errorf("request id: response %q, upstream %q", id, h.Get("X-Request-Id"))
	}
	if v := resp.Header.Values("X-Request-Id"); len(v) != 1 {
		t.Errorf("response X-Request-Id %q: want the server's only", v)
	}
	// Outside /api/v1/ the route's request rule does not apply.
	get(t, p.URL("/api/v2/items"))
	if h := lastHeader(); h.Get("X-Api-Version") != "" {
		t.Errorf("/api/v2: X-Api-Version %q", h.Get("X-Api-Version"))
	}
}

// Rewrites happen before routing, on both engines (a request the fast
// path would serve is rewritten the same), keep or replace the query, and
// the access log shows what the client asked for.
func TestRewrites(t *testing.T) {
	up, _ := echoUpstream(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"www/posts/42.html": "post 42",
		"www/new.txt":       "new",
	})
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "stdout"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.rewrite]]
  from = "^/blog/(\\d+)$"
  to = "/posts/$1.html"
  [[site.rewrite]]
  from = "^/old\\.txt$"
  to = "/new.txt"
  [[site.rewrite]]
  from = "^/u/(?P<name>[a-z]+)$"
  to = "/api/users?name=${name}"
  [[site.route]]
  path = "/"
  static = { root = "www" }
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = [%q] }
`, up.URL), 1)
	cases := []struct{ path, want string }{
		{"/blog/42", "post 42"},
		{"/old.txt", "new"},
		{"/u/ann", "path=/api/users query=name=ann"},
		{"/u/ann?page=2", "path=/api/users query=name=ann&page=2"},
		{"/blog/x", ""}, // no rule: 404
	}
	for _, c := range cases {
		resp, body := get(t, p.URL(c.path))
		if c.want == "" {
			if resp.StatusCode != 404 {
				t.Errorf("%s: %d, want 404", c.path, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != 200 || body != c.want {
			t.Errorf("%s: %d %q, want %q", c.path, resp.StatusCode, body, c.want)
		}
	}
	// The same through a raw keep-alive request (the fast path's engine).
	out := rawRequest(t, p, "GET /old.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.HasSuffix(out, "\r\n\r\nnew") {
		t.Errorf("raw: %q", out)
	}
	waitFor(t, 3*time.Second, func() bool { return strings.Contains(p.Stdout.String(), `"GET /blog/42 HTTP/1.1" 200`) })
}

// X-Request-ID: generated per request or passed through, on both
// engines, in the response, upstream and the access log.
func TestRequestID(t *testing.T) {
	up, lastHeader := echoUpstream(t)
	for _, mode := range []string{"generate", "pass"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"www/a.txt": "a"})
			p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "stdout"
log_format = "json"
request_id = %q
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "www" }
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = [%q] }
`, mode, up.URL), 1)
			hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
			// Static (the fast path) and proxy (net/http once the id must go upstream).
			r1, _ := get(t, p.URL("/a.txt"))
			r2, _ := get(t, p.URL("/a.txt"))
			id1, id2 := r1.Header.Get("X-Request-Id"), r2.Header.Get("X-Request-Id")
			if !hex32.MatchString(id1) || id1 == id2 {
				t.Errorf("static ids %q, %q: want two fresh ones", id1, id2)
			}
			r3, _ := get(t, p.URL("/api/x"))
			if id := r3.Header.Get("X-Request-Id"); !hex32.MatchString(id) || lastHeader().Get("X-Request-Id") != id {
				t.Errorf("proxy: response id %q, upstream saw %q", id, lastHeader().Get("X-Request-Id"))
			}
			// A client's id: kept in pass mode, replaced in generate mode;
			// a bad one always replaced.
			r4, _ := get(t, p.URL("/api/x"), "X-Request-ID", "client-id-1")
			r5, _ := get(t, p.URL("/a.txt"), "X-Request-ID", "client-id-2")
			r6, _ := get(t, p.URL("/a.txt"), "X-Request-ID", "bad\"id")
			if mode == "pass" {
				if r4.Header.Get("X-Request-Id") != "client-id-1" || lastHeader().Get("X-Request-Id") != "client-id-1" || r5.Header.Get("X-Request-Id") != "client-id-2" {
					t.Errorf("pass: got %q, %q (upstream %q)", r4.Header.Get("X-Request-Id"), r5.Header.Get("X-Request-Id"), lastHeader().Get("X-Request-Id"))
				}
			} else if r4.Header.Get("X-Request-Id") == "client-id-1" || r5.Header.Get("X-Request-Id") == "client-id-2" {
				t.Errorf("generate kept the client's id")
			}
			if !hex32.MatchString(r6.Header.Get("X-Request-Id")) {
				t.Errorf("bad id not replaced: %q", r6.Header.Get("X-Request-Id"))
			}
			waitFor(t, 3*time.Second, func() bool {
				return strings.Contains(p.Stdout.String(), `"request_id":"`+id1+`"`) && strings.Contains(p.Stdout.String(), `"request_id":"`+r3.Header.Get("X-Request-Id")+`"`)
			})
		})
	}
}
