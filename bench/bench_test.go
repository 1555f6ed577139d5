// Package bench holds whole-server benchmarks: portico's full handler stack
// (listener, vhost, route, handler) over loopback, side by side with plain
// net/http baselines measured in the same run, so the ratios mean something
// on a noisy machine. Run:
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// The wrk scripts beside this file compare against nginx, lighttpd, Apache
// and Caddy.
package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/server"
)

var body1KiB = bytes.Repeat([]byte("x"), 1024)

// startPortico serves dir on a loopback port with portico's full stack.
func startPortico(b *testing.B, dir string) (addr string, stop func()) {
	b.Helper()
	cfg := &config.Config{Sites: []config.Site{{
		Listen: []string{"127.0.0.1:0"},
		Routes: []config.Route{{Path: "/", Static: &config.Static{Root: dir}}},
	}}}
	cfg.Server.AccessLog = "off"
	config.ApplyDefaults(cfg)
	srv := server.New(server.Options{})
	if err := srv.Start(cfg); err != nil {
		b.Fatal(err)
	}
	for _, a := range srv.Addrs() {
		addr = a.String()
	}
	return addr, func() { srv.Shutdown(b.Context()) }
}

func startHTTP(b *testing.B, h http.Handler) (string, func()) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln)
	return ln.Addr().String(), func() { s.Close() }
}

// keepAliveLoop sends b.N GETs for path over one keep-alive connection and
// reads each response fully.
func keepAliveLoop(b *testing.B, addr, path string, wantBody int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 64<<10)
	b.SetBytes(int64(wantBody))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n, err := readResponse(br)
		if err != nil {
			b.Fatal(err)
		}
		if n != wantBody {
			b.Fatalf("body %d bytes, want %d", n, wantBody)
		}
	}
}

// readResponse reads one response with a Content-Length body.
func readResponse(br *bufio.Reader) (int, error) {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		return 0, fmt.Errorf("status %q", status)
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := strings.Cut(string(line), ":"); ok && strings.EqualFold(k, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("no Content-Length")
	}
	_, err = br.Discard(length)
	return length, err
}

func fileDir(b *testing.B) string {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "1k.txt"), body1KiB, 0o644); err != nil {
		b.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := os.WriteFile(filepath.Join(dir, "1m.bin"), big, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkStatic1KiB: portico's full stack serving a 1 KiB file.
func BenchmarkStatic1KiB(b *testing.B) {
	addr, stop := startPortico(b, fileDir(b))
	defer stop()
	keepAliveLoop(b, addr, "/1k.txt", 1024)
}

// BenchmarkStatic1MiB: portico serving a 1 MiB file (sendfile).
func BenchmarkStatic1MiB(b *testing.B) {
	addr, stop := startPortico(b, fileDir(b))
	defer stop()
	keepAliveLoop(b, addr, "/1m.bin", 1<<20)
}

// BenchmarkNetHTTPMemory1KiB is the baseline: plain net/http answering
// 1 KiB from memory with every header set by hand.
func BenchmarkNetHTTPMemory1KiB(b *testing.B) {
	addr, stop := startHTTP(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = []string{"1024"}
		w.Write(body1KiB)
	}))
	defer stop()
	keepAliveLoop(b, addr, "/1k.txt", 1024)
}

// BenchmarkFileServer1KiB is the other baseline: http.FileServer.
func BenchmarkFileServer1KiB(b *testing.B) {
	addr, stop := startHTTP(b, http.FileServer(http.Dir(fileDir(b))))
	defer stop()
	keepAliveLoop(b, addr, "/1k.txt", 1024)
}

var _ = io.Discard
