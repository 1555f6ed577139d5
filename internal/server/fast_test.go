package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"portico/internal/enginetest"
	"reflect"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/fastpath"
)

// syncBuffer is the shared goroutine-safe buffer.
type syncBuffer = enginetest.SyncBuffer

// startFastServer runs a Server with one static site on a loopback port.
func startFastServer(t *testing.T, format string) (*Server, string, *syncBuffer, *Metrics) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "1k.txt"), []byte(strings.Repeat("x", 1024)), 0o644)
	os.WriteFile(filepath.Join(root, "sub", "index.html"), []byte("<p>sub</p>"), 0o644)
	toml := fmt.Sprintf(`
[server]
access_log = "stdout"
log_format = %q

[[site]]
name = "main"
listen = ["127.0.0.1:0"]
headers = { "X-Frame-Options" = "DENY", "Cache-Control" = "no-store", "vary" = "Origin" }

[[site.route]]
path = "/"
static = { root = %q, cache_control = "public, max-age=60" }

[[site.route]]
path = "/go/"
redirect = { to = "https://example.test/" }
`, format, root)
	return startServerTOML(t, dir, toml)
}

// startServerTOML runs a Server with the configuration toml (written in
// dir) and returns it with its one listener's address, its stdout and
// metrics.
func startServerTOML(t *testing.T, dir, toml string) (*Server, string, *syncBuffer, *Metrics) {
	t.Helper()
	file := filepath.Join(dir, "portico.toml")
	os.WriteFile(file, []byte(toml), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	m := NewMetrics()
	s := New(Options{Stdout: out, Metrics: m})
	if err := s.Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	var addr string
	for _, a := range s.Addrs() {
		addr = a.String()
	}
	return s, addr, out, m
}

type wireResp struct {
	status int
	header http.Header
	body   string
}

// roundTrip sends raw request bytes on a new connection and reads one
// response.
func roundTrip(t *testing.T, addr, raw, method string) wireResp {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	r, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Header.Del("Date")
	return wireResp{r.StatusCode, r.Header, string(b)}
}

// A request the fast path answers gets the same response and the same
// access-log line as the same request through net/http (forced there by
// a Proxy-Connection header, which the fast path never serves and net/http
// ignores).
func TestFastPathMatchesNetHTTP(t *testing.T) {
	for _, format := range []string{"combined", "json"} {
		s, addr, out, _ := startFastServer(t, format)
		tests := []struct {
			method, target, hdr string
		}{
			{"GET", "/1k.txt", ""},
			{"HEAD", "/1k.txt", ""},
			{"GET", "/1k.txt?x=%22y%22", "User-Agent: evil\"\\x\r\nReferer: http://ref.test/\r\n"},
			{"GET", "/sub/", "Authorization: Basic dXNlcjpwdw==\r\n"},
			{"GET", "/1k.txt", "Range: bytes=0-9\r\n"},
			{"GET", "/1k.txt", "If-Modified-Since: Mon, 02 Jan 2034 15:04:05 GMT\r\n"},
			{"GET", "/missing", ""},
			{"GET", "/go/x", ""},
			{"GET", "/a/../1k.txt", ""},
		}
		for _, tt := range tests {
			raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: h.test\r\n%sConnection: close\r\n", tt.method, tt.target, tt.hdr)
			got := roundTrip(t, addr, raw+"\r\n", tt.method)
			want := roundTrip(t, addr, raw+"Proxy-Connection: keep-alive\r\n\r\n", tt.method)
			name := format + " " + tt.method + " " + tt.target
			if got.status != want.status || !reflect.DeepEqual(got.header, want.header) || got.body != want.body {
				t.Errorf("%s: got %d %q %q, want %d %q %q", name, got.status, got.header, got.body, want.status, want.header, want.body)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Shutdown(ctx)
		cancel()
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		lines = lines[1:] // "portico: serving ..."
		if len(lines) != 2*len(tests) {
			t.Fatalf("%s: got %d log lines, want %d: %q", format, len(lines), 2*len(tests), lines)
		}
		for i := 0; i < len(lines); i += 2 {
			a, b := normalizeLogLine(lines[i]), normalizeLogLine(lines[i+1])
			if a != b {
				t.Errorf("%s: fast line %q, net/http line %q", format, a, b)
			}
		}
	}
}

// The site-level 404s (a Host no site claims, a path no route takes) are
// answered on the fast path, equal to net/http's: same response, same
// access-log line.
func TestFastPathSite404(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	os.MkdirAll(root, 0o755)
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("a"), 0o644)
	s, addr, out, _ := startServerTOML(t, dir, fmt.Sprintf(`
[server]
access_log = "stdout"

[[site]]
name = "main"
hosts = ["h.test"]
listen = ["127.0.0.1:0"]
headers = { "X-Frame-Options" = "DENY", "Cache-Control" = "private" }

[[site.route]]
path = "/files/"
static = { root = %q }
`, root))
	tests := []struct{ method, host, target, hdr string }{
		{"GET", "h.test", "/nowhere", ""},
		{"HEAD", "h.test", "/nowhere", ""},
		{"GET", "h.test", "/nowhere?q=1", "Accept: text/html\r\n"},
		{"GET", "h.test", "/files/missing", ""},
		{"GET", "other.test", "/files/a.txt", ""},
		{"HEAD", "other.test", "/", "Accept: text/html\r\n"},
		{"GET", "other.test", "/", "Accept: text/html\r\n"},
	}
	for _, tt := range tests {
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n", tt.method, tt.target, tt.host, tt.hdr)
		got := roundTrip(t, addr, raw+"\r\n", tt.method)
		want := roundTrip(t, addr, raw+"Proxy-Connection: keep-alive\r\n\r\n", tt.method)
		if got.status != 404 || got.status != want.status || !reflect.DeepEqual(got.header, want.header) || got.body != want.body {
			t.Errorf("%s %s %s: got %d %q %q, want 404 %q %q", tt.method, tt.host, tt.target, got.status, got.header, got.body, want.header, want.body)
		}
	}
	// Each is the fast path's.
	fe := &fastEntry{s: s, key: config.ListenerKey("127.0.0.1:0")}
	for _, tt := range tests {
		req := &fastpath.Request{Method: tt.method, Proto: "HTTP/1.1", ProtoMinor: 1, Host: tt.host,
			URI: tt.target, Path: strings.Split(tt.target, "?")[0], RawPath: strings.Split(tt.target, "?")[0], KeepAlive: true}
		if !fastpath.NewRecorder().Serve(fe, req) {
			t.Errorf("%s %s %s: declined by the fast path", tt.method, tt.host, tt.target)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.Shutdown(ctx)
	cancel()
	// "serving", then the pairs, then the recorder's.
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1+3*len(tests) {
		t.Fatalf("got %d log lines, want %d: %q", len(lines), 1+3*len(tests), lines)
	}
	lines = lines[1 : 1+2*len(tests)]
	for i := 0; i < len(lines); i += 2 {
		if a, b := normalizeLogLine(lines[i]), normalizeLogLine(lines[i+1]); a != b {
			t.Errorf("fast line %q, net/http line %q", a, b)
		}
	}
}

// normalizeLogLine blanks the parts that differ between two requests: the
// time and the duration.
func normalizeLogLine(s string) string {
	if i := strings.IndexByte(s, '['); i >= 0 && !strings.HasPrefix(s, "{") {
		if j := strings.IndexByte(s[i:], ']'); j >= 0 {
			s = s[:i] + "[T]" + s[i+j+1:]
		}
	}
	if strings.HasPrefix(s, `{"time":"`) {
		if j := strings.Index(s, `","remote_addr"`); j >= 0 {
			s = `{"time":"T` + s[j:]
		}
		if i := strings.Index(s, `"duration_ms":`); i >= 0 {
			if j := strings.Index(s[i:], `,"referer"`); j >= 0 {
				s = s[:i] + `"duration_ms":D` + s[i+j:]
			}
		}
	}
	return s
}

// Metrics count fast-path requests like the others.
func TestFastPathMetrics(t *testing.T) {
	_, addr, _, m := startFastServer(t, "combined")
	for i := 0; i < 3; i++ {
		roundTrip(t, addr, "GET /1k.txt HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET")
	}
	time.Sleep(50 * time.Millisecond)
	mfs, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, mf := range mfs {
		if mf.GetName() != "portico_requests_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			got += mm.GetCounter().GetValue()
		}
	}
	if got != 3 {
		t.Errorf("got %v requests counted, want 3", got)
	}
}

// Shutdown ends idle fast-path connections and returns.
func TestFastPathShutdown(t *testing.T) {
	s, addr, _, _ := startFastServer(t, "combined")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /1k.txt HTTP/1.1\r\nHost: h\r\n\r\n")
	r, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Errorf("connection still open after Shutdown")
	}
}

// BenchmarkFastEntry1KiB is the server's part of a fast-path hit: vhost,
// route, static cache hit, site headers, access log (combined, to a
// discarding writer) and metrics; no socket.
func BenchmarkFastEntry1KiB(b *testing.B) { benchFastEntry(b, "/1k.txt") }

// BenchmarkFast404 is BenchmarkFastEntry1KiB for a missing file: the
// static handler's 404 page, rendered once, with the same log and metrics.
func BenchmarkFast404(b *testing.B) { benchFastEntry(b, "/missing.txt") }

// BenchmarkFast404Bare is BenchmarkFast404 as the benchmarks against
// nginx and lighttpd run it: no access log, no metrics (no admin).
func BenchmarkFast404Bare(b *testing.B) {
	benchFastEntryConfig(b, "/missing.txt", `access_log = "off"`, "", nil)
}

// BenchmarkFastEntryRateLimited is BenchmarkFastEntry1KiB on a route
// with a rate limit that is never reached (issue 12: >= 0.9x the open
// route).
func BenchmarkFastEntryRateLimited(b *testing.B) {
	benchFastEntryRoute(b, "/1k.txt", `rate_limit = { rate = "1000000/s", burst = 1000000 }`)
}

// BenchmarkFastEntryHeaderRule is BenchmarkFastEntry1KiB with a header
// rule layer on the route.
func BenchmarkFastEntryHeaderRule(b *testing.B) {
	benchFastEntryRoute(b, "/1k.txt", "[[site.route.headers]]\nset = { \"X-Layer\" = \"1\" }")
}

func benchFastEntry(b *testing.B, path string) { benchFastEntryRoute(b, path, "") }

func benchFastEntryRoute(b *testing.B, path, routeExtra string) {
	benchFastEntryConfig(b, path, `access_log = "stdout"`, routeExtra, NewMetrics())
}

// benchFastEntryConfig serves path through the fast entry of a site with
// a static route; server and routeExtra are TOML lines for [server] and
// the route, metrics nil for none.
func benchFastEntryConfig(b *testing.B, path, server, routeExtra string, metrics *Metrics) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "1k.txt"), []byte(strings.Repeat("x", 1024)), 0o644)
	file := filepath.Join(dir, "portico.toml")
	os.WriteFile(file, []byte(fmt.Sprintf(`
[server]
%s
[[site]]
listen = ["127.0.0.1:0"]
headers = { "X-Frame-Options" = "DENY" }
[[site.route]]
path = "/"
static = { root = %q }
%s
`, server, dir, routeExtra)), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{Stdout: io.Discard, Metrics: metrics})
	t, err := s.build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close(context.Background())
	s.tree.Store(t)
	fe := &fastEntry{s: s, key: config.ListenerKey("127.0.0.1:0")}
	req := &fastpath.Request{Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, URI: path, Path: path, RawPath: path,
		Host: "localhost:8080", UserAgent: "wrk", Accept: "*/*", RemoteAddr: "127.0.0.1:5555", KeepAlive: true, Start: time.Now()}
	rec := fastpath.NewRecorder()
	if !rec.Serve(fe, req) {
		b.Fatal("not served")
	}
	b.ReportAllocs()
	for b.Loop() {
		rec.Serve(fe, req)
	}
}
