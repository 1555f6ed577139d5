package fastcgi

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
