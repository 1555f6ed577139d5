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
// connection from its iterable's close(), a body on HEAD, more bytes than
// its Content-Length) must never have those bytes read as the answer to
// the next request. The connection to a worker is kept across requests,
// but the next request is sent only once the adapter has said, after
// close(), that the request is settled (its S frame): the stray bytes land
// where that frame belongs, portico drops the connection, and the next
// request, a POST that could not be retried elsewhere, goes on a new one.
// One worker, so every request follows a misbehaving one on the same
// process; many rounds.
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
		{"POST", "/clean", "clean"},
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

// TestForgedFramesNeverReachAClient: bytes with the shape of a whole
// response in the worker framing (head, body, end), written straight to
// the worker's connection ahead of the app's real response, are refused
// because their id is not the request's: the connection is dropped, the
// client gets 502 (never the stray body or its Cache-Control), and the
// next request, on a new connection to the same live worker, is served.
func TestForgedFramesNeverReachAClient(t *testing.T) {
	tp := newPoolAt(t, config.WSGI{
		App:     "strayapp:application",
		Dir:     testdata(t, "stray"),
		Workers: 1,
		Python:  python(t),
		Timeout: config.Duration(10 * time.Second),
	}, "")
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for i := range rounds {
		resp, body := tp.get(t, "/forged")
		if resp.StatusCode != http.StatusBadGateway || bytes.Contains(body, []byte("STRAY")) ||
			strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
			t.Fatalf("round %d: GET /forged = %d %q %v, want 502 without the forged response",
				i, resp.StatusCode, body, resp.Header)
		}
		req, err := http.NewRequest("POST", tp.srv.URL+"/clean", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp, body = do(t, req)
		if resp.StatusCode != 200 || string(body) != "clean" {
			t.Fatalf("round %d: POST /clean after forged frames = %d %q, want 200 \"clean\"", i, resp.StatusCode, body)
		}
	}
	tp.logs.waitLog(t, 5*time.Second, "strayapp: stray bytes written", "answer for request")
	if n := tp.Stats().Restarts; n != 0 {
		t.Errorf("%d worker restarts: a framing doubt drops the connection, not the worker", n)
	}
}
