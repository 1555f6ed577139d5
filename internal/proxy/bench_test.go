package proxy

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"portico/internal/config"
)

// discardWriter is a minimal ResponseWriter, so benchmarks measure the proxy
// and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) Flush()                      {}

func benchUpstream(b *testing.B, size int) *testUpstream {
	body := make([]byte, size)
	length := []string{strconv.Itoa(size)}
	return startUpstream(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = length
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	}))
}

// BenchmarkServeHTTP: one GET through the handler to a loopback upstream
// (1 KiB body). Compare allocs/op against the baseline benchmark below.
func BenchmarkServeHTTP(b *testing.B) {
	up := benchUpstream(b, 1024)
	h := newHandler(b, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	r := httptest.NewRequest("GET", "http://site.test/index.html?x=1", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

func BenchmarkServeHTTPParallel(b *testing.B) {
	up := benchUpstream(b, 1024)
	h := newHandler(b, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "http://site.test/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkBaselineTransport is the same GET with the bare tuned transport
// and no ReverseProxy: the floor the proxy's overhead is measured against.
func BenchmarkBaselineTransport(b *testing.B) {
	up := benchUpstream(b, 1024)
	h := newHandler(b, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	req, _ := http.NewRequest("GET", up.URL+"/", nil)
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.transport.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		resp.Body.Close()
	}
}

func BenchmarkPick(b *testing.B) {
	for _, policy := range []string{"round_robin", "least_conn", "ip_hash", "random"} {
		for _, weighted := range []bool{false, true} {
			name := policy
			ups := []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3", "http://127.0.0.1:4"}
			if weighted {
				name += "/weighted"
				ups[0] += " weight=3"
			}
			b.Run(name, func(b *testing.B) {
				h := newHandler(b, config.Proxy{Upstreams: ups, Balance: policy}, Options{})
				b.ReportAllocs()
				now := time.Now()
				for b.Loop() {
					if h.pick(now, 0, "198.51.100.7:4321") == nil {
						b.Fatal("nil")
					}
				}
			})
		}
	}
}
