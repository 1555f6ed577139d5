package cache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"portico/internal/config"
)

// discardWriter is a ResponseWriter that keeps nothing, reusing its header
// map, so the benchmarks measure the cache alone.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func benchHit(b *testing.B, vary bool) {
	hdr := []string{"Cache-Control", "public, max-age=3600", "Content-Type", "text/plain", "Etag", `"abc"`}
	if vary {
		hdr = append(hdr, "Vary", "Accept-Encoding")
	}
	o := newOrigin(nil, 200, strings.Repeat("x", 1024), hdr...)
	h, err := New(filled(config.Cache{}), o, Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "http://bench.test/hit?x=1", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	h.ServeHTTP(httptest.NewRecorder(), r)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.status != 200 || !strings.Contains(w.h.Get("Cache-Status"), "hit") {
		b.Fatalf("not a hit: %d %q", w.status, w.h.Get("Cache-Status"))
	}
}

func BenchmarkHit(b *testing.B)     { benchHit(b, false) }
func BenchmarkHitVary(b *testing.B) { benchHit(b, true) }

func BenchmarkHitParallel(b *testing.B) {
	o := newOrigin(nil, 200, strings.Repeat("x", 1024), "Cache-Control", "public, max-age=3600")
	h, _ := New(filled(config.Cache{}), o, Options{})
	r := httptest.NewRequest("GET", "http://bench.test/hit", nil)
	h.ServeHTTP(httptest.NewRecorder(), r)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

func BenchmarkParseCacheControl(b *testing.B) {
	v := []string{"public, max-age=3600, stale-while-revalidate=60, no-transform"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		parseCacheControl(v)
	}
}
