package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStatusPage opens the admin address's status page in a real browser,
// on a desktop and a phone screen, and checks it shows what an operator
// looks for: sites, listeners, routes, upstreams with health and in-flight
// counts, cache hit ratio and size, CGI processes, uptime and the last
// reload. The JSON form must carry the same data. Screenshots are kept in
// $PORTICO_KEEP_SCREENSHOTS when set.
func TestStatusPage(t *testing.T) {
	dir := t.TempDir()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "from the app")
	}))
	defer up.Close()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	writeFiles(t, dir, map[string]string{"public/index.html": "home", "cgi-bin/x.sh": "#!/bin/sh\necho ok\n"})
	cfg := fmt.Sprintf(`
[server]
admin = %q
access_log = "off"

[[site]]
name = "shop"
listen = ["127.0.0.1:0"]
hosts = ["shop.test", "*.shop.test"]

  [[site.route]]
  path = "/"
  static = { root = "public" }

  [[site.route]]
  path = "/api/"
  [site.route.proxy]
  upstreams = [%q, "http://127.0.0.1:1"]
  [site.route.cache]
  max_size = "16MB"

  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
`, admin, up.URL)
	p := startConfig(t, dir, cfg, 1)
	for i := 0; i < 3; i++ {
		get(t, p.URL("/api/item"), "Host", "shop.test")
	}
	// A reload that fails (bad config) shows as the last reload.
	writeFiles(t, dir, map[string]string{"portico.toml": cfg + "\nbogus = 1\n"})
	p.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "reload failed") })

	resp, body := get(t, "http://"+admin+"/?format=json")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status JSON: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var snap struct {
		Uptime     *int64 `json:"uptime_seconds"`
		LastReload *struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"last_reload"`
		Listeners []struct{ Addr string } `json:"listeners"`
		Sites     []struct {
			Name   string
			Routes []struct {
				Path      string
				Kind      string
				Upstreams []struct {
					Addr    string
					Healthy bool
				}
				Cache *struct {
					Hits     int64
					Misses   int64
					HitRatio float64 `json:"hit_ratio"`
					MaxSize  int64   `json:"max_size"`
				}
				CGI *struct{ Max int }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, body)
	}
	if snap.Uptime == nil || len(snap.Listeners) != 1 || len(snap.Sites) != 1 || len(snap.Sites[0].Routes) != 3 {
		t.Fatalf("status JSON lacks uptime, the listener, the site or its routes:\n%s", body)
	}
	if snap.LastReload == nil || snap.LastReload.OK || !strings.Contains(snap.LastReload.Error, "bogus") {
		t.Errorf("last reload: %+v, want a failure naming the bad key", snap.LastReload)
	}
	for _, rt := range snap.Sites[0].Routes {
		switch rt.Path {
		case "/api/":
			if len(rt.Upstreams) != 2 || rt.Cache == nil || rt.Cache.Hits != 2 || rt.Cache.Misses != 1 || rt.Cache.MaxSize != 16<<20 {
				t.Errorf("proxy route status: %+v", rt)
			}
		case "/cgi-bin/":
			if rt.CGI == nil || rt.CGI.Max < 1 {
				t.Errorf("cgi route status: %+v", rt)
			}
		}
	}

	resp, _ = get(t, "http://"+admin+"/")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("status page Content-Type %q", ct)
	}
	dom := runChromium(t, "--dump-dom", "http://"+admin+"/")
	for _, want := range []string{
		"portico status", "uptime", "shop", "shop.test", "*.shop.test", p.URLs[0][len("http://") : len(p.URLs[0])-1],
		"/api/", strings.TrimPrefix(up.URL, "http://"), "127.0.0.1:1", "hit ratio 66.7%", "16.0 MiB",
		"CGI: 0 running", "failed", "bogus", `name="viewport"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Errorf("status page uses JavaScript")
	}
	keep := os.Getenv("PORTICO_KEEP_SCREENSHOTS")
	for _, screen := range []struct{ name, size string }{{"status-desktop.png", "1280,900"}, {"status-phone.png", "390,844"}} {
		shot := filepath.Join(dir, screen.name)
		runChromium(t, "--window-size="+screen.size, "--hide-scrollbars", "--screenshot="+shot, "http://"+admin+"/")
		fi, err := os.Stat(shot)
		if err != nil || fi.Size() < 5000 {
			t.Errorf("no %s screenshot: %v", screen.name, err)
			continue
		}
		if keep != "" {
			data, _ := os.ReadFile(shot)
			os.WriteFile(filepath.Join(keep, screen.name), data, 0o644)
		}
	}
}
