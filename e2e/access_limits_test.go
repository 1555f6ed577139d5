package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAccessRateLimitSharedByTwoInstances: two portico processes on one
// redis-server share a budget: of 1,000 requests across both, exactly
// the burst get 200, the rest 429 with Retry-After. With Redis gone,
// requests pass, with a log line and a metric.
func TestAccessRateLimitSharedByTwoInstances(t *testing.T) {
	redisAddr := startRedisServer(t)
	const burst = 50
	admins := []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	var procs []*Proc
	for _, admin := range admins {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"public/index.html": "limited"})
		procs = append(procs, startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
admin = %q
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
  rate_limit = { rate = "1/m", burst = %d, key = "ip", store = "redis://%s/0" }
`, admin, burst, redisAddr), 1))
	}
	var ok, limited, other atomic.Int64
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 125; i++ {
				resp, err := hc.Get(procs[(w+i)%2].URL("/"))
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					ok.Add(1)
				case resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "":
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	if ok.Load() != burst || limited.Load() != 1000-burst || other.Load() != 0 {
		t.Errorf("1000 requests across two instances: %d ok, %d limited, %d other; want %d, %d, 0", ok.Load(), limited.Load(), other.Load(), burst, 1000-burst)
	}
	for i, admin := range admins {
		if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "portico_ratelimit_limited_total") {
			t.Errorf("instance %d: no rate-limit metric:\n%s", i, grepLines(body, "ratelimit"))
		}
	}
}

// TestAccessRateLimitFailsOpen: a Redis that is not there lets requests
// through, logged once and counted.
func TestAccessRateLimitFailsOpen(t *testing.T) {
	dir := t.TempDir()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	writeFiles(t, dir, map[string]string{"public/index.html": "open"})
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
admin = %q
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
  rate_limit = { rate = "1/h", burst = 1, store = "redis://127.0.0.1:%d/0" }
`, admin, freePort(t)), 1)
	for i := 0; i < 5; i++ {
		if resp, _ := get(t, p.URL("/")); resp.StatusCode != 200 {
			t.Errorf("request %d with Redis down: %d, want 200 (fail open)", i, resp.StatusCode)
		}
	}
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "redis unavailable") })
	if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "portico_ratelimit_store_errors_total 5") {
		t.Errorf("store errors not counted:\n%s", grepLines(body, "ratelimit"))
	}
}

// TestAccessRateLimitMemory: a memory limit answers 429 with
// Retry-After on both engines (a static route keeps the fast path), and
// a header key limits per value.
func TestAccessRateLimitMemory(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "page", "public/x": "api"})
	p := startConfig(t, dir, `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
  rate_limit = { rate = "3/m", burst = 3 }
  [[site.route]]
  path = "/api/"
  static = { root = "public" }
  rate_limit = { rate = "1/h", burst = 1, key = "header:X-Api-Key" }
`, 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	codes := []string{}
	for i := 0; i < 4; i++ {
		// HEAD goes the fast path, POST goes net/http: one budget.
		method := []string{"GET", "POST", "HEAD", "GET"}[i]
		out := rawTo(t, addr, method+" / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 3*time.Second)
		codes = append(codes, strings.SplitN(out, " ", 3)[1])
		if i == 3 && !strings.Contains(out, "Retry-After: ") {
			t.Errorf("429 without Retry-After:\n%s", out)
		}
	}
	if got := strings.Join(codes, ","); got != "200,405,200,429" {
		t.Errorf("statuses %s, want 200,405,200,429 (three in the budget, the fourth limited)", got)
	}
	if resp, _ := get(t, p.URL("/api/x"), "X-Api-Key", "a"); resp.StatusCode != 200 {
		t.Errorf("key a: %d", resp.StatusCode)
	}
	if resp, _ := get(t, p.URL("/api/x"), "X-Api-Key", "a"); resp.StatusCode != 429 {
		t.Errorf("key a again: %d, want 429", resp.StatusCode)
	}
	if resp, _ := get(t, p.URL("/api/x"), "X-Api-Key", strings.Repeat("b", 100<<10)); resp.StatusCode != 200 {
		t.Errorf("a 100 KB key: %d, want 200", resp.StatusCode)
	}

}

// TestAccessConnLimit: max_conns_per_ip closes a connection beyond the
// limit at once, and counts a closed one out.
func TestAccessConnLimit(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/x": "api"})
	p := startConfig(t, dir, `
[server]
access_log = "off"
max_conns_per_ip = 2
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/api/"
  static = { root = "public" }
`, 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "HEAD /api/x HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 ") {
			t.Fatalf("held connection %d: %q %v", i, buf[:n], err)
		}
		held = append(held, c)
	}
	if out := rawTo(t, addr, "HEAD /api/x HTTP/1.1\r\nHost: x\r\n\r\n", 3*time.Second); out != "" {
		t.Errorf("third connection got %q, want it closed", out)
	}
	held[0].Close()
	waitFor(t, 5*time.Second, func() bool {
		return strings.HasPrefix(rawTo(t, addr, "HEAD /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3*time.Second), "HTTP/1.1 ")
	})
}
