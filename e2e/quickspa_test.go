package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestQuickModeSPAWithProxy is the quick-mode trap: with
// `serve --spa --proxy URL`, a browser navigation to a path the app
// serves (an OAuth callback) reaches the app; only what the app answers
// with 404 becomes the SPA's index.html, and a missing asset stays 404.
func TestQuickModeSPAWithProxy(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/callback" {
			fmt.Fprint(w, "logged in")
			return
		}
		http.NotFound(w, r)
	}))
	defer app.Close()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "<h1>spa</h1>", "assets/app.js": "js"})
	p := startPortico(t, dir, 1, "serve", "--spa", "--proxy", app.URL, "-b", "127.0.0.1", "0")
	nav := []string{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}
	for _, c := range []struct {
		path   string
		hdr    []string
		status int
		body   string
	}{
		{"/oauth/callback?code=1", nav, 200, "logged in"},
		{"/users/42", nav, 200, "<h1>spa</h1>"},
		{"/assets/app.js", nil, 200, "js"},
		{"/assets/missing.js", []string{"Accept", "*/*"}, 404, "404 page not found\n"},
	} {
		resp, body := get(t, p.URL(c.path), c.hdr...)
		if resp.StatusCode != c.status || body != c.body {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, resp.StatusCode, body, c.status, c.body)
		}
	}
}
