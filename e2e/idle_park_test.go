package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Idle keep-alive connections in the real server, past the point where
// the fast path parks them (more than 64 open: at once; and after 1 to 2s
// idle): they answer their next request, a client closing one frees its
// max_conns_per_ip count, and SIGTERM closes them at once and exits 0.
func TestIdleKeepAliveConnsParkedServedAndShutDown(t *testing.T) {
	const conns, limit = 100, 100
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/a.txt": "hello a"})
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
idle_timeout = "30s"
shutdown_timeout = "5s"
max_conns_per_ip = %d
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, limit), 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")

	type client struct {
		c  net.Conn
		br *bufio.Reader
	}
	dial := func() client {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return client{c, bufio.NewReader(c)}
	}
	get := func(cl client, what string) {
		t.Helper()
		if _, err := io.WriteString(cl.c, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		resp, err := http.ReadResponse(cl.br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(b) != "hello a" {
			t.Fatalf("%s: %d %q %v", what, resp.StatusCode, b, err)
		}
	}
	clients := make([]client, conns)
	for i := range clients {
		clients[i] = dial()
		get(clients[i], fmt.Sprintf("connection %d, first request", i))
	}
	time.Sleep(2500 * time.Millisecond) // parked, at once or kicked
	for i, cl := range clients {
		get(cl, fmt.Sprintf("connection %d, after idling", i))
	}
	time.Sleep(2500 * time.Millisecond)

	// Clients leave while parked: their places under max_conns_per_ip
	// are free again.
	for _, cl := range clients[:10] {
		cl.c.Close()
	}
	clients = clients[10:]
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < 10; i++ {
		cl := dial()
		get(cl, fmt.Sprintf("new connection %d after 10 left", i))
		clients = append(clients, cl)
	}
	time.Sleep(2500 * time.Millisecond)

	start := time.Now()
	p.Signal(syscall.SIGTERM)
	for i, cl := range clients {
		cl.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, err := cl.br.Read(make([]byte, 1)); err == nil || n > 0 {
			t.Fatalf("connection %d: got a byte after SIGTERM, want the end", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection %d: still open 3s after SIGTERM", i)
		}
	}
	if code := p.Wait(5 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.Stderr)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("SIGTERM with idle connections took %v, want at once", d)
	}
}

// portico run collects garbage twice once it listens: a server whose
// requests allocate nothing would otherwise make its first collections
// (and the GC metadata they build, about 0.8 MB) during its first burst
// of connections, which bench/idle-rss.sh then counts against them (0.7
// KiB per idle connection instead of about 0.5; nginx 0.5). Go starts its
// periodic collection only after a first one, so an idle server would
// not collect on its own.
func TestRunCollectsBeforeTraffic(t *testing.T) {
	dir := t.TempDir()
	admin := freeAddr(t)
	writeFiles(t, dir, map[string]string{"public/a.txt": "a"})
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
admin = %q
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, admin), 1)
	// One scrape, a moment after start: scrapes allocate, and polling
	// would soon make collections of its own.
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stdout.String(), "admin on") })
	time.Sleep(300 * time.Millisecond)
	_, body := get(t, "http://"+admin+"/metrics")
	n, ok := metricValue(body, "go_gc_duration_seconds_count", "")
	if !ok {
		t.Fatalf("no go_gc_duration_seconds_count in /metrics:\n%s", body)
	}
	if n < 2 {
		t.Errorf("collections after start: %v, want at least 2", n)
	}
}
