package fastcgi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"portico/internal/fastpath"
)

// BenchmarkHello measures one front-controller request through the
// handler to a Go fake responder over a unix socket (kept alive): the
// handler's own cost, without PHP. Compare allocs/op before and after a
// change to the hot path.
func BenchmarkHello(b *testing.B) {
	fake := newFakeServer(b, func(req *fakeReq) error {
		return req.respond("Content-Type: text/plain\r\n\r\nHello, world!\n")
	})
	s := newSetup(b, fake, testRoot(b), nil).h
	req := httptest.NewRequest("GET", "/app/hello/world?x=1", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkHelloFast is BenchmarkHello on the fast path engine (a
// fastpath.Recorder in place of the client's connection): what a GET of
// the front controller costs the handler there.
func BenchmarkHelloFast(b *testing.B) {
	fake := newFakeServer(b, func(req *fakeReq) error {
		return req.respond("Content-Type: text/plain\r\n\r\nHello, world!\n")
	})
	s := newSetup(b, fake, testRoot(b), nil).h
	req := &fastpath.Request{
		Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, RemoteAddr: "127.0.0.1:40000",
		URI: "/app/hello/world?x=1", RawPath: "/app/hello/world", Path: "/app/hello/world", Query: "x=1",
		Host: "localhost", UserAgent: "bench", Accept: "*/*", KeepAlive: true,
	}
	rec := fastpath.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !rec.Serve(s, req) || rec.Writer().Status() != http.StatusOK {
			b.Fatalf("not served: %q", rec.Output())
		}
	}
}
