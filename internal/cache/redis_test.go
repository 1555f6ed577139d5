package cache

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/internal/config"
)

const redisBin = "/usr/bin/redis-server"

// sharedRedis is the redis-server TestMain starts for the Redis tests
// ("" when redis-server is missing).
var sharedRedis string

func TestMain(m *testing.M) {
	flag.Parse()
	var stop func()
	if _, err := os.Stat(redisBin); err == nil {
		addr, kill, err := startRedis()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cache tests: start redis-server:", err)
			os.Exit(1)
		}
		sharedRedis, stop = addr, kill
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis() (addr string, kill func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(redisBin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return addr, kill, nil
			}
		}
		if time.Now().After(deadline) {
			kill()
			return "", nil, fmt.Errorf("redis-server on %s did not answer", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func needRedis(t *testing.T) string {
	t.Helper()
	if sharedRedis == "" {
		if testing.Short() {
			t.Skip("redis-server not installed (-short)")
		}
		t.Fatal("redis-server not installed at " + redisBin)
	}
	return sharedRedis
}

func newRedisCache(t *testing.T, addr, name string, next http.Handler, log *slog.Logger) *Handler {
	t.Helper()
	h, err := New(filled(config.Cache{Store: "redis://" + addr + "/0"}), next, Options{Name: name, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Close(ctx)
	})
	return h
}

// waitCached polls with only-if-cached until h answers from the store.
func waitCached(t *testing.T, h *Handler, target string, kv ...string) *http.Response {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		res := do(h, "GET", target, append([]string{"Cache-Control", "only-if-cached"}, kv...)...)
		if res.StatusCode != http.StatusGatewayTimeout {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared in the shared store", target)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisSharedBetweenProcesses(t *testing.T) {
	addr := needRedis(t)
	name := "shared-" + fmt.Sprint(time.Now().UnixNano())
	o1 := newOrigin(nil, 200, "from one", "Cache-Control", "max-age=60", "Etag", `"1"`, "X-Multi", "a")
	o1.header.Add("X-Multi", "b")
	o2 := newOrigin(nil, 200, "from two", "Cache-Control", "max-age=60")
	h1 := newRedisCache(t, addr, name, o1, nil)
	h2 := newRedisCache(t, addr, name, o2, nil)

	res := do(h1, "GET", "http://a.test/shared")
	if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "stored") {
		t.Fatalf("first request: Cache-Status %q", cs)
	}
	res = waitCached(t, h2, "http://a.test/shared")
	if b := body(t, res); b != "from one" || !strings.Contains(res.Header.Get("Cache-Status"), "hit") {
		t.Errorf("second process: %q %q, want a hit on the first one's entry", b, res.Header.Get("Cache-Status"))
	}
	if got := res.Header.Values("X-Multi"); len(got) != 2 || got[1] != "b" {
		t.Errorf("header round trip: X-Multi %q", got)
	}
	if o2.hits.Load() != 0 {
		t.Errorf("second process went upstream %d times", o2.hits.Load())
	}

	// Vary through Redis.
	o1.set(200, "lang=", "Cache-Control", "max-age=60", "Vary", "Accept-Language")
	o1.echo = "Accept-Language"
	do(h1, "GET", "http://a.test/vary", "Accept-Language", "de")
	res = waitCached(t, h2, "http://a.test/vary", "Accept-Language", "de")
	if b := body(t, res); b != "lang=de" {
		t.Errorf("variant through redis: %q", b)
	}
	if r := do(h2, "GET", "http://a.test/vary", "Accept-Language", "it", "Cache-Control", "only-if-cached"); r.StatusCode != 504 {
		t.Errorf("other variant: status %d, want 504 (not stored)", r.StatusCode)
	}

	// Purge on one process removes the entry for both.
	n, err := h2.Purge(context.Background(), "http://a.test/", true)
	if err != nil || n != 3 {
		t.Errorf("Purge = %d, %v; want 3 (one entry, one marker, one variant)", n, err)
	}
	if r := do(h1, "GET", "http://a.test/shared", "Cache-Control", "only-if-cached"); r.StatusCode != 504 {
		t.Errorf("after purge: status %d, want 504", r.StatusCode)
	}

	// Unsafe methods invalidate across processes.
	o1.set(200, "again", "Cache-Control", "max-age=60")
	do(h1, "GET", "http://a.test/inv")
	waitCached(t, h2, "http://a.test/inv")
	do(h2, "POST", "http://a.test/inv")
	if r := do(h1, "GET", "http://a.test/inv", "Cache-Control", "only-if-cached"); r.StatusCode != 504 {
		t.Errorf("after POST on the other process: status %d, want 504", r.StatusCode)
	}
}

func TestRedisEntryTTL(t *testing.T) {
	addr := needRedis(t)
	name := "ttl-" + fmt.Sprint(time.Now().UnixNano())
	o := newOrigin(nil, 200, "x", "Cache-Control", "max-age=100, stale-while-revalidate=1000")
	h := newRedisCache(t, addr, name, o, nil)
	do(h, "GET", "http://a.test/ttl")
	waitCached(t, h, "http://a.test/ttl")
	rs := h.store.(*redisStore)
	ttl, err := rs.client.TTL(context.Background(), rs.ns+h.keyFor("http", "a.test", "/ttl", "")).Result()
	if err != nil {
		t.Fatal(err)
	}
	// freshness 100s + stale window 1000s
	if ttl < 1090*time.Second || ttl > 1100*time.Second {
		t.Errorf("redis TTL %v, want about 1100s (freshness + stale-while-revalidate)", ttl)
	}
}

// logCounter counts log lines.
type logCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logCounter) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func TestRedisDiesMidTest(t *testing.T) {
	if _, err := os.Stat(redisBin); err != nil {
		needRedis(t)
	}
	addr, kill, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer kill()
	logs := &logCounter{}
	o := newOrigin(nil, 200, "fine", "Cache-Control", "max-age=60")
	h := newRedisCache(t, addr, "dies", o, slog.New(slog.NewTextHandler(logs, nil)))
	do(h, "GET", "http://a.test/d")
	waitCached(t, h, "http://a.test/d")
	before := o.hits.Load()

	kill()
	start := time.Now()
	for i := 0; i < 30; i++ {
		t0 := time.Now()
		res := do(h, "GET", fmt.Sprintf("http://a.test/d%d", i%3))
		if res.StatusCode != 200 || body(t, res) != "fine" {
			t.Fatalf("request %d with redis dead: status %d", i, res.StatusCode)
		}
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Errorf("request %d took %v with redis dead", i, d)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("30 requests took %v with redis dead", d)
	}
	if o.hits.Load()-before != 30 {
		t.Errorf("upstream hits %d, want 30 (uncached while redis is down)", o.hits.Load()-before)
	}
	if n := logs.count("redis unavailable"); n != 1 {
		t.Errorf("%d log lines about redis, want 1 (rate-limited):\n%s", n, strings.Join(logs.lines, ""))
	}
	if _, err := h.Purge(context.Background(), "http://a.test/", true); err == nil {
		t.Error("Purge with redis dead: no error")
	}
}

func TestRedisSlowCircuitBreaker(t *testing.T) {
	// A Redis that accepts connections and never answers: each call would
	// cost the full timeout; the breaker must stop paying it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	o := newOrigin(nil, 200, "ok", "Cache-Control", "max-age=60")
	h := newRedisCache(t, ln.Addr().String(), "slow", o, slog.New(slog.NewTextHandler(&logCounter{}, nil)))
	var slow int
	start := time.Now()
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		res := do(h, "GET", "http://a.test/slow")
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if time.Since(t0) > 140*time.Millisecond { // the redis timeout is 150ms
			slow++
		}
	}
	if slow > 4 {
		t.Errorf("%d of 20 requests paid the redis timeout; the breaker should open after 3 failures", slow)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("20 requests took %v", d)
	}
}

func TestEntryEncoding(t *testing.T) {
	e := &entry{
		Status: 203, Body: []byte("body\x00bytes"),
		Header:      http.Header{"Content-Type": {"text/plain"}, "X-A": {"1", "2"}, "Cache-Control": {"max-age=60, stale-if-error=5"}},
		RequestTime: time.Unix(100, 5), ResponseTime: time.Unix(101, 7), InitialAge: 3 * time.Second,
		Expires: time.Unix(500, 0), URL: "http://a.test/x?y", VaryNames: []string{"Accept", "Accept-Language"},
		VaryKey: "Accept=a\n", MarkerID: "", Tags: []string{"t1", "product-42"},
	}
	e.prepare()
	got, err := decodeEntry(e.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != e.Status || !bytes.Equal(got.Body, e.Body) || got.URL != e.URL || got.VaryKey != e.VaryKey ||
		!got.RequestTime.Equal(e.RequestTime) || !got.ResponseTime.Equal(e.ResponseTime) || got.InitialAge != e.InitialAge ||
		!got.Expires.Equal(e.Expires) || strings.Join(got.VaryNames, ",") != "Accept,Accept-Language" ||
		strings.Join(got.Header["X-A"], ",") != "1,2" || got.lifetime != 60*time.Second || got.sie != 5*time.Second ||
		strings.Join(got.Tags, ",") != "t1,product-42" {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
	}
	for _, bad := range [][]byte{nil, []byte("PC1"), []byte("XX1abc"), e.encode()[:20], append(e.encode(), 0)} {
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("decodeEntry(%q): no error", bad)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	e := &entry{Status: 200, Header: http.Header{"A": {"b"}}, Body: []byte("x"), URL: "u", VaryNames: []string{"V"}}
	f.Add(e.encode())
	f.Add([]byte("PC1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeEntry(b); err == nil {
			if _, err := decodeEntry(e.encode()); err != nil {
				t.Fatalf("re-encoded entry does not decode: %v", err)
			}
		}
	})
}

func TestRedisComesBack(t *testing.T) {
	if _, err := os.Stat(redisBin); err != nil {
		needRedis(t)
	}
	addr, kill, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin(nil, 200, "ok", "Cache-Control", "max-age=60")
	h := newRedisCache(t, addr, "back", o, slog.New(slog.NewTextHandler(&logCounter{}, nil)))
	kill()
	for i := 0; i < 5; i++ { // open the breaker
		if res := do(h, "GET", "http://a.test/b"); res.StatusCode != 200 {
			t.Fatalf("status %d with redis down", res.StatusCode)
		}
	}
	// Restart on the same port: after the cooldown one probe closes the breaker.
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(redisBin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(breakerCooldown + 5*time.Second)
	for {
		do(h, "GET", "http://a.test/b")
		if res := do(h, "GET", "http://a.test/b", "Cache-Control", "only-if-cached"); res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never used redis again after it came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
