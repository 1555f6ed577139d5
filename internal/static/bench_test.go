package static

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"portico/internal/config"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark
// measures the handler alone. Its header map is reused across requests,
// as net/http's is not; net/http's own costs are measured by
// BenchmarkServe1KiBNetHTTP.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func benchHandler(b *testing.B) *Handler {
	b.Helper()
	root := b.TempDir()
	os.WriteFile(filepath.Join(root, "1k.txt"), []byte(strings.Repeat("x", 1024)), 0o644)
	os.WriteFile(filepath.Join(root, "app.js"), []byte(strings.Repeat("y", 4096)), 0o644)
	os.WriteFile(filepath.Join(root, "app.js.br"), []byte(strings.Repeat("z", 1000)), 0o644)
	os.WriteFile(filepath.Join(root, "1m.bin"), make([]byte, 1<<20), 0o644)
	cfg := config.Static{Root: root}
	cfg.SetDefaults()
	h, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func benchServe(b *testing.B, target string, hdr ...string) {
	h := benchHandler(b)
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.code != 200 && w.code != 304 && w.code != 206 {
		b.Fatalf("status %d", w.code)
	}
}

// BenchmarkServe1KiB is a cached 1 KiB hit through ServeHTTP alone.
func BenchmarkServe1KiB(b *testing.B) { benchServe(b, "/1k.txt") }

// BenchmarkServeBrotli picks a precompressed variant.
func BenchmarkServeBrotli(b *testing.B) {
	benchServe(b, "/app.js", "Accept-Encoding", "gzip, deflate, br, zstd")
}

func BenchmarkServe304(b *testing.B) {
	h := benchHandler(b)
	e, _ := h.lookup("/1k.txt", "", "", false)
	benchServe(b, "/1k.txt", "If-None-Match", e.ETag[0])
}

func BenchmarkServeRange(b *testing.B) { benchServe(b, "/1k.txt", "Range", "bytes=100-199") }

func BenchmarkLookup(b *testing.B) {
	h := benchHandler(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.lookup("/app.js", "", "gzip, br", false); err != nil {
			b.Fatal(err)
		}
	}
}

// benchNetHTTP runs requests over one keep-alive connection to a real
// net/http server, reading each response before sending the next.
func benchNetHTTP(b *testing.B, target string, size int) {
	h := benchHandler(b)
	ts := httptest.NewServer(h)
	defer ts.Close()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReaderSize(c, 64<<10)
	want := "Content-Length: " + strconv.Itoa(size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		ok := false
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if strings.HasPrefix(string(line), want) {
				ok = true
			}
		}
		if !ok {
			b.Fatal("no or wrong Content-Length")
		}
		if _, err := io.CopyN(io.Discard, br, int64(size)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServe1KiBNetHTTP is the full cost of a 1 KiB hit in net/http
// (allocations include the server's own, and the client's in this process).
func BenchmarkServe1KiBNetHTTP(b *testing.B) { benchNetHTTP(b, "/1k.txt", 1024) }

// BenchmarkServe1MiBNetHTTP sends a 1 MiB file with sendfile.
func BenchmarkServe1MiBNetHTTP(b *testing.B) { benchNetHTTP(b, "/1m.bin", 1<<20) }

// BenchmarkFileServer1KiBNetHTTP is net/http's FileServer, for comparison.
func BenchmarkFileServer1KiBNetHTTP(b *testing.B) {
	h := benchHandler(b)
	fs := http.FileServer(http.Dir(h.rootReal))
	ts := httptest.NewServer(fs)
	defer ts.Close()
	c, _ := net.Dial("tcp", ts.Listener.Addr().String())
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		c.Write(req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkServeIndex serves a folder's index file.
func BenchmarkServeIndex(b *testing.B) {
	h := benchHandler(b)
	os.MkdirAll(filepath.Join(h.rootReal, "docs"), 0o755)
	os.WriteFile(filepath.Join(h.rootReal, "docs", "index.html"), []byte("<p>docs</p>"), 0o644)
	r := httptest.NewRequest("GET", "/docs/", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.code != 200 {
		b.Fatalf("status %d", w.code)
	}
}
