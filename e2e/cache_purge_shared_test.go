package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 14 point 3: two portico processes share one redis-server; purges
// by URL, prefix and tag on A's admin address make B miss afterwards.
func TestCachePurgeReachesEveryInstanceSharingRedis(t *testing.T) {
	redisAddr := startRedisServer(t)
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Cache-Tag", "all, page-"+strings.TrimPrefix(r.URL.Path, "/"))
		fmt.Fprintf(w, "page %s #%d", r.URL.Path, n)
	}))
	t.Cleanup(up.Close)
	store := "redis://" + redisAddr + "/0"
	config := func(admin string) string {
		return strings.Replace(cacheConfig(up.URL, store, admin), `store = "`+store+`"`,
			`store = "`+store+`"
  tag_header = "Cache-Tag"`, 1)
	}
	adminA := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := startConfig(t, t.TempDir(), config(adminA), 1)
	b := startConfig(t, t.TempDir(), config(""), 1)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(a.Stdout.String(), "admin on") })

	// fill stores path through A and waits until B hits it. B asks with
	// only-if-cached, so it never fetches (and stores, in the background)
	// a copy of its own that could land after the purge.
	fill := func(path string) {
		t.Helper()
		resp, _ := get(t, a.URL(path), "Host", "site.test")
		if resp.Header.Get("Cache-Tag") != "" {
			t.Errorf("%s: Cache-Tag reached the client", path)
		}
		waitFor(t, 5*time.Second, func() bool {
			r, _ := get(t, b.URL(path), "Host", "site.test", "Cache-Control", "only-if-cached")
			return strings.Contains(r.Header.Get("Cache-Status"), "hit") && r.Header.Get("Cache-Tag") == ""
		})
	}
	missesOnB := func(what, path string) {
		t.Helper()
		r, _ := get(t, b.URL(path), "Host", "site.test", "Cache-Control", "only-if-cached")
		if r.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("after purge by %s on A: B answered %s with %d (Cache-Status %q), want a miss",
				what, path, r.StatusCode, r.Header.Get("Cache-Status"))
		}
	}
	hitsOnB := func(what, path string) {
		t.Helper()
		r, _ := get(t, b.URL(path), "Host", "site.test", "Cache-Control", "only-if-cached")
		if r.StatusCode != http.StatusOK {
			t.Errorf("after purge by %s on A: B lost %s too (%d)", what, path, r.StatusCode)
		}
	}
	purge := func(body string) {
		t.Helper()
		resp, out := do(t, "POST", "http://"+adminA+"/cache/purge", strings.NewReader(body), "Content-Type", "application/json")
		if resp.StatusCode != 200 || strings.Contains(out, `"purged":0`) {
			t.Fatalf("purge %s: %d %s", body, resp.StatusCode, out)
		}
	}

	fill("/u1")
	fill("/u2")
	purge(`{"url": "http://site.test/u1"}`)
	missesOnB("URL", "/u1")
	hitsOnB("URL", "/u2")

	fill("/dir/a")
	fill("/dir/b")
	purge(`{"url": "http://site.test/dir/", "prefix": true}`)
	missesOnB("prefix", "/dir/a")
	missesOnB("prefix", "/dir/b")
	hitsOnB("prefix", "/u2")

	fill("/t1")
	purge(`{"tag": "page-t1"}`)
	missesOnB("tag", "/t1")
	hitsOnB("tag", "/u2")
	purge(`{"tag": "all"}`)
	missesOnB("tag", "/u2")
}
