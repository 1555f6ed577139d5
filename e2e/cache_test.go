package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedisServer runs a throwaway redis-server on a free loopback port
// and returns its address; it is killed when the test ends.
func startRedisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testing.Short() {
			t.Skip("redis-server not installed (-short)")
		}
		t.Fatal("redis-server not installed: .ci/run installs it")
	}
	port := strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + port
	waitFor(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// countingUpstream answers cacheable pages and counts the requests it gets.
func countingUpstream(t *testing.T, hits *atomic.Int64) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "page %s #%d", r.URL.Path, n)
	}))
	t.Cleanup(up.Close)
	return up
}

func cacheConfig(upstream, store, admin string) string {
	adminLine := ""
	if admin != "" {
		adminLine = fmt.Sprintf("admin = %q", admin)
	}
	return fmt.Sprintf(`
[server]
access_log = "off"
%s
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  [site.route.proxy]
  upstreams = [%q]
  [site.route.cache]
  store = %q
`, adminLine, upstream, store)
}

// Two portico processes with one Redis store: a miss on one is a hit on
// the other.
func TestCacheSharedThroughRedisAcrossProcesses(t *testing.T) {
	redisAddr := startRedisServer(t)
	var hits atomic.Int64
	up := countingUpstream(t, &hits)
	store := "redis://" + redisAddr + "/0"
	a := startConfig(t, t.TempDir(), cacheConfig(up.URL, store, ""), 1)
	b := startConfig(t, t.TempDir(), cacheConfig(up.URL, store, ""), 1)

	resp, body := get(t, a.URL("/shared"), "Host", "site.test")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Status"), "miss") {
		t.Fatalf("first fetch on A: %d %q Cache-Status %q", resp.StatusCode, body, resp.Header.Get("Cache-Status"))
	}
	// A writes to Redis after its answer (a SET on its own goroutine):
	// B is asked once the entry is there, or it would miss, fetch and
	// store a second page itself.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	waitFor(t, 5*time.Second, func() bool {
		keys, err := rdb.Keys(context.Background(), "portico:*shared*").Result()
		return err == nil && len(keys) > 0
	})
	var resp2 *http.Response
	var body2 string
	waitFor(t, 5*time.Second, func() bool {
		resp2, body2 = get(t, b.URL("/shared"), "Host", "site.test")
		return strings.Contains(resp2.Header.Get("Cache-Status"), "hit")
	})
	if body2 != body || hits.Load() != 1 {
		t.Errorf("B served %q (want %q from the shared cache); upstream hit %d times, want 1", body2, body, hits.Load())
	}
	if resp2.Header.Get("Age") == "" {
		t.Errorf("hit without Age header")
	}
}

// Redis down: requests go upstream as if uncached, no client error.
func TestCacheRedisDownIsNotAClientError(t *testing.T) {
	var hits atomic.Int64
	up := countingUpstream(t, &hits)
	dead := "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/0"
	p := startConfig(t, t.TempDir(), cacheConfig(up.URL, dead, ""), 1)
	for i := 0; i < 5; i++ {
		resp, body := get(t, p.URL("/x"))
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "page /x") {
			t.Fatalf("with redis down: %d %q", resp.StatusCode, body)
		}
	}
}

// The memory cache: Cache-Status on hits and misses, and a purge through
// the admin address.
func TestCacheStatusAndAdminPurge(t *testing.T) {
	var hits atomic.Int64
	up := countingUpstream(t, &hits)
	adminPort := freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	p := startConfig(t, t.TempDir(), cacheConfig(up.URL, "memory", admin), 1)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stdout.String(), "admin on") })

	resp, _ := get(t, p.URL("/a"), "Host", "site.test")
	if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "miss") || !strings.Contains(cs, "stored") {
		t.Errorf("miss: Cache-Status %q", cs)
	}
	resp, _ = get(t, p.URL("/a"), "Host", "site.test")
	if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "hit") || !strings.Contains(cs, "ttl=") {
		t.Errorf("hit: Cache-Status %q", cs)
	}
	if hits.Load() != 1 {
		t.Fatalf("upstream hits %d, want 1", hits.Load())
	}
	if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "portico_cache_hits_total{cache=") {
		t.Errorf("metrics lack cache counters:\n%.1500s", body)
	}
	// Purge by URL prefix, then the next request goes upstream again.
	resp, body := do(t, "POST", "http://"+admin+"/cache/purge?prefix=true&url="+"http://site.test/", nil, "Content-Type", "application/json")
	if resp.StatusCode != 200 || !strings.Contains(body, `"purged":1`) {
		t.Errorf("purge: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, p.URL("/a"), "Host", "site.test")
	if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "miss") || hits.Load() != 2 {
		t.Errorf("after purge: Cache-Status %q, upstream hits %d (want a miss and 2)", cs, hits.Load())
	}
}
