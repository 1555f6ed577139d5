package wsgi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// TestStrayBytesNeverReachTheNextClient: an app that writes past its
// response (a whole second response sent straight to the worker's
// connection after its own, a body on HEAD, more bytes than its
// Content-Length) must never have those bytes read as the answer to the
// next request. Each request to a worker uses its own connection, closed
// after the response (the adapter frames every response and says
// Connection: close; the Transport keeps no idle connection), so the
// stray bytes die with that connection. One worker, so every request
// follows a misbehaving one on the same process; many rounds.
func TestStrayBytesNeverReachTheNextClient(t *testing.T) {
	tp := newPoolAt(t, config.WSGI{
		App:     "strayapp:application",
		Dir:     testdata(t, "stray"),
		Workers: 1,
		Python:  python(t),
		Timeout: config.Duration(10 * time.Second),
	}, "")
	rounds := 150
	if testing.Short() {
		rounds = 30
	}
	want := []struct {
		method, path string
		body         string
	}{
		{"GET", "/stray", "good"},
		{"GET", "/clean", "clean"},
		{"HEAD", "/stray", ""},
		{"GET", "/clean", "clean"},
		{"GET", "/overflow", "ok"},
		{"HEAD", "/clean", ""},
		{"GET", "/clean", "clean"},
	}
	deadline := time.Now().Add(60 * time.Second)
	leaks, requests := 0, 0
	for i := 0; i < rounds && time.Now().Before(deadline); i++ {
		for _, w := range want {
			req, err := http.NewRequest(w.method, tp.srv.URL+w.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := do(t, req)
			requests++
			if resp.StatusCode != 200 || string(body) != w.body || bytes.Contains(body, []byte("STRAY")) {
				leaks++
				if leaks <= 5 {
					t.Errorf("round %d: %s %s = %d %q, want 200 %q", i, w.method, w.path, resp.StatusCode, body, w.body)
				}
			}
			if resp.Header.Get("Cache-Control") != "" {
				leaks++
				t.Errorf("round %d: %s %s carries the stray response's Cache-Control", i, w.method, w.path)
			}
		}
	}
	t.Logf("%d requests after misbehaving ones on one worker: %d saw stray bytes", requests, leaks)
	// The stray bytes were really written (the test would prove nothing
	// if the app's second write always failed).
	tp.logs.waitLog(t, 5*time.Second, "strayapp: stray bytes written")
	t.Logf("stray responses written by the app: %d (failed writes: %d)",
		strings.Count(tp.logs.String(), "strayapp: stray bytes written"),
		strings.Count(tp.logs.String(), "strayapp: stray write failed"))
	if n := tp.Stats().Restarts; n != 0 {
		t.Errorf("%d worker restarts: each request must have reached the same live worker", n)
	}
}
