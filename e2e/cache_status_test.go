package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// accessLogCacheConfig is a cached proxy route logging to logPath.
func accessLogCacheConfig(upstream, store, logPath, format string) string {
	return fmt.Sprintf(`
[server]
access_log = %q
log_format = %q
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  [site.route.proxy]
  upstreams = [%q]
  [site.route.cache]
  store = %q
`, logPath, format, upstream, store)
}

// readLogLines waits until the access log has n lines (it is flushed every
// 200ms) and returns them.
func readLogLines(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	waitFor(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(path)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(b) > 0 && len(lines) >= n
	})
	return lines
}

// Issue 14 point 5: Cache-Status says "stored" only when Redis answers,
// and the access log carries nginx's $upstream_cache_status,
// $upstream_addr and $upstream_response_time.
func TestCacheStatusHonestWithRedisKilled(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not installed: .ci/run installs it")
	}
	port := strconv.Itoa(freePort(t))
	redis := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			redis.Process.Kill()
			redis.Wait()
		}
	}
	t.Cleanup(kill)
	addr := "127.0.0.1:" + port
	waitFor(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	var hits atomic.Int64
	up := countingUpstream(t, &hits)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	p := startConfig(t, dir, accessLogCacheConfig(up.URL, "redis://"+addr+"/0", logPath, "combined"), 1)

	resp, _ := get(t, p.URL("/up"))
	if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "stored") {
		t.Fatalf("Redis up: Cache-Status %q, want stored", cs)
	}
	waitFor(t, 5*time.Second, func() bool {
		r, _ := get(t, p.URL("/up"))
		return strings.Contains(r.Header.Get("Cache-Status"), "hit")
	})

	kill()
	for i := range 3 {
		resp, body := get(t, p.URL(fmt.Sprintf("/down%d", i)))
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "page /down") {
			t.Fatalf("Redis down: %d %q", resp.StatusCode, body)
		}
		if cs := resp.Header.Get("Cache-Status"); strings.Contains(cs, "stored") || !strings.Contains(cs, "miss") {
			t.Errorf("Redis down, request %d: Cache-Status %q, want a miss not stored", i, cs)
		}
	}

	lines := readLogLines(t, logPath, 3)
	upAddr := strings.TrimPrefix(up.URL, "http://")
	// ... "GET /up HTTP/1.1" 200 12 "-" "Go-http-client/1.1" "MISS" "127.0.0.1:NNNN" "0.001"
	miss := regexp.MustCompile(`"GET /up HTTP/1.1" 200 \d+ "[^"]*" "[^"]*" "MISS" "` + regexp.QuoteMeta(upAddr) + `" "\d+\.\d{3}"$`)
	hit := regexp.MustCompile(`"GET /up HTTP/1.1" 200 \d+ "[^"]*" "[^"]*" "HIT" "-" "-"$`)
	if !miss.MatchString(lines[0]) {
		t.Errorf("miss line %q does not match %s", lines[0], miss)
	}
	if !hit.MatchString(lines[len(lines)-4]) {
		t.Errorf("hit line %q does not match %s", lines[len(lines)-4], hit)
	}
}

// The JSON access log has the same three as fields; a request no cache
// nor proxy handled has none of them.
func TestAccessLogJSONUpstreamFields(t *testing.T) {
	var hits atomic.Int64
	up := countingUpstream(t, &hits)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	p := startConfig(t, dir, accessLogCacheConfig(up.URL, "memory", logPath, "json"), 1)
	get(t, p.URL("/j"))
	get(t, p.URL("/j"))
	do(t, "POST", p.URL("/j"), strings.NewReader("x"))
	lines := readLogLines(t, logPath, 3)
	want := []struct{ status, addr string }{
		{"MISS", strings.TrimPrefix(up.URL, "http://")},
		{"HIT", ""},
		{"BYPASS", strings.TrimPrefix(up.URL, "http://")},
	}
	for i, w := range want {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
		if m["cache_status"] != w.status {
			t.Errorf("line %d: cache_status %v, want %s", i, m["cache_status"], w.status)
		}
		addr, _ := m["upstream_addr"].(string)
		if addr != w.addr {
			t.Errorf("line %d: upstream_addr %q, want %q", i, addr, w.addr)
		}
		if tm, _ := m["upstream_response_time"].(string); w.addr != "" && !regexp.MustCompile(`^\d+\.\d{3}$`).MatchString(tm) {
			t.Errorf("line %d: upstream_response_time %q", i, tm)
		}
	}
}
