package wsgi

import (
	"io"
	"net/http"
	"testing"
	"time"

	"portico/internal/config"
)

// BenchmarkHello measures a small JSON response through the pool (Go ->
// unix socket -> adapter -> app and back), with 4 workers in parallel.
//
//	go test -run XXX -bench Hello ./internal/wsgi/
func BenchmarkHello(b *testing.B) {
	py := python(b)
	p, err := New(config.WSGI{App: "envapp:application", Dir: testdata(b, "app"), Workers: 4, Python: py,
		Timeout: config.Duration(10 * time.Second)}, Options{Prefix: "/app"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(b.Context())
	srv := newBenchServer(p)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c := &http.Client{Transport: tr}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(srv.URL + "/app/pid")
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
