package cgi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// benchServer serves a root holding examples/cgi-bin/hello.c compiled.
func benchServer(b *testing.B) (*httptest.Server, func()) {
	return benchServerWith(b, func(*config.CGI) {}, false)
}

// benchServerWith is benchServer with the config changed by edit, and
// limits forced through the exec shim when shim is set.
func benchServerWith(b *testing.B, edit func(*config.CGI), shim bool) (*httptest.Server, func()) {
	b.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		b.Skip("no C compiler")
	}
	dir, err := os.MkdirTemp(sharedDir, "bench-")
	if err != nil {
		b.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	src := filepath.Join("..", "..", "examples", "cgi-bin", "hello.c")
	if out, err := exec.Command(cc, "-O2", "-o", filepath.Join(dir, "hello"), src).CombinedOutput(); err != nil {
		b.Fatalf("cc: %v\n%s", err, out)
	}
	cfg := config.CGI{Root: dir, Timeout: config.Duration(10 * time.Second), MaxProcesses: 256}
	edit(&cfg)
	h, err := New(cfg, Options{Prefix: "/cgi-bin", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if shim {
		h.limiter.useShim.Store(true)
	}
	srv := httptest.NewServer(h)
	return srv, func() {
		srv.Close()
		h.Close(context.Background())
		os.RemoveAll(dir)
	}
}

// BenchmarkHelloC measures one request running the C hello program
// (fork/exec, pipes, header parsing, reaping) over loopback HTTP/1.1.
func BenchmarkHelloC(b *testing.B) {
	srv, done := benchServer(b)
	defer done()
	benchHello(b, srv)
}

// BenchmarkHelloCLimited is BenchmarkHelloC with limits set, by the
// traced start (scripts as portico's own user: user = "root" as root)
// and by the exec shim: what limits cost per request.
func BenchmarkHelloCLimited(b *testing.B) {
	limits := config.CGILimits{CPU: config.Duration(10 * time.Second), Memory: 256 << 20, Files: 64, Processes: 1000}
	for _, mode := range []struct {
		name string
		shim bool
	}{{"traced", false}, {"shim", true}} {
		b.Run(mode.name, func(b *testing.B) {
			srv, done := benchServerWith(b, func(c *config.CGI) { c.Limits = limits; c.User = "root" }, mode.shim)
			defer done()
			benchHello(b, srv)
		})
	}
}

func benchHello(b *testing.B, srv *httptest.Server) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(srv.URL + "/cgi-bin/hello")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkParseHeader measures the response-header parser alone.
func BenchmarkParseHeader(b *testing.B) {
	in := "Content-Type: text/html; charset=utf-8\r\nSet-Cookie: a=1\r\nCache-Control: no-store\r\nX-Frame-Options: DENY\r\n\r\n<p>"
	r := strings.NewReader(in)
	br := bufio.NewReaderSize(r, readerSize)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		if _, err := parseHeader(br, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnv measures building one script environment.
func BenchmarkEnv(b *testing.B) {
	h, err := New(config.CGI{Root: sharedDir, Env: map[string]string{"APP_ENV": "prod"}}, Options{Prefix: "/cgi-bin"})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	r := httptest.NewRequest("GET", "/cgi-bin/x/y?q=1", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	r.Header.Set("Accept-Language", "en-US,en;q=0.5")
	r.Header.Set("Cookie", "session=abc")
	s := &script{name: "/cgi-bin/x", file: "/srv/cgi-bin/x", pathInfo: "/y"}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.env(r, s, -1)
	}
}
