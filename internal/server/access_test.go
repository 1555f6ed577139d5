package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"portico/internal/config"
	"portico/internal/enginetest"
)

// TestAccessGatesKeepTheFastPath builds a real tree with gated routes
// and serves it through both engines: basic auth, allow/deny and rate
// limits answer the same on both and keep the fast path (the proxy's
// fast path included, which must not relay the consumed credential);
// forward_auth goes to net/http.
func TestAccessGatesKeepTheFastPath(t *testing.T) {
	dir := t.TempDir()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "up auth=%q", r.Header.Get("Authorization"))
	}))
	t.Cleanup(up.Close)
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(authSrv.Close)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	os.MkdirAll(filepath.Join(dir, "public"), 0o755)
	os.WriteFile(filepath.Join(dir, "public", "index.html"), []byte("home"), 0o644)
	os.WriteFile(filepath.Join(dir, "portico.toml"), []byte(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:1"]
basic_auth = { users = { alice = "`+string(hash)+`" } }
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = ["`+up.URL+`"] }
  [[site.route]]
  path = "/limited/"
  static = { root = "public" }
  rate_limit = { rate = "1/h", burst = 4, key = "route" }
  [[site.route]]
  path = "/office/"
  static = { root = "public" }
  allow = ["192.0.2.0/24"]
  [[site.route]]
  path = "/sso/"
  static = { root = "public" }
  forward_auth = { url = "`+authSrv.URL+`" }
`), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "portico.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Build(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	f := enginetest.Start(t, tr.byListener[config.ListenerKey("127.0.0.1:1")].lookup("x"), nil)
	cred := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))
	cases := []struct {
		raw      string
		wantFast bool
		status   int
		body     string
	}{
		{enginetest.GET("/", "x"), true, 401, ""},
		{enginetest.GET("/", "x", cred), true, 200, "home"},
		{enginetest.GET("/", "x", "Authorization: Basic !!"), true, 401, ""},
		{enginetest.GET("/api/x", "x", cred), true, 200, `up auth=""`},
		{enginetest.GET("/office/", "x", cred), true, 403, ""},
		{enginetest.GET("/limited/", "x"), true, 401, ""}, // the site's basic_auth still applies
		{enginetest.GET("/sso/", "x"), false, 401, ""},
		{enginetest.GET("/sso/", "x", cred), false, 200, "home"},
	}
	for _, c := range cases {
		r := f.Same(t, c.wantFast, c.raw)
		if r[0].Status != c.status || c.body != "" && r[0].Body != c.body {
			t.Errorf("%q: %d %q, want %d %q", c.raw, r[0].Status, r[0].Body, c.status, c.body)
		}
	}
	// The rate budget of 4 is one for both engines (the two 401s above
	// spent 2: the limit runs before basic auth): one Same call uses it
	// up, the next is 429 on both.
	for i := 0; i < 1; i++ {
		if r := f.Same(t, true, enginetest.GET("/limited/", "x", cred)); r[0].Status != 200 {
			t.Errorf("within the budget: %d", r[0].Status)
		}
	}
	r := f.Same(t, true, enginetest.GET("/limited/", "x", cred))
	if r[0].Status != 429 || r[0].Header.Get("Retry-After") == "" {
		t.Errorf("past the budget: %d %v", r[0].Status, r[0].Header)
	}
}
