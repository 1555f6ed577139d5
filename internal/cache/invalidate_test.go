package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"portico/internal/config"
)

// racingOrigin serves GET /r with the current version; its first GET blocks
// until released, so that a POST can change the resource meanwhile.
type racingOrigin struct {
	mu       sync.Mutex
	version  string
	gets     int
	started  chan struct{} // closed when the first GET reached the origin
	release  chan struct{} // the first GET answers when this closes
	snapshot string        // what the first GET answers (read when it arrived)
}

func (o *racingOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if r.Method == http.MethodPost {
		o.version = "new"
		o.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	o.gets++
	first, v := o.gets == 1, o.version
	o.mu.Unlock()
	if first {
		close(o.started)
		<-o.release
	}
	w.Header().Set("Cache-Control", "max-age=600")
	io.WriteString(w, v)
}

// TestInvalidationRacesInflightGET: RFC 9111 section 4.4. A GET whose
// upstream request was sent before a POST invalidated the URL carries the
// old representation; storing it when it arrives (after the invalidation)
// would serve "old" for ten minutes. The fetch must not store it.
func TestInvalidationRacesInflightGET(t *testing.T) {
	for _, purge := range []bool{false, true} {
		name := "POST"
		if purge {
			name = "Purge"
		}
		t.Run(name, func(t *testing.T) {
			o := &racingOrigin{version: "old", started: make(chan struct{}), release: make(chan struct{})}
			h := newTestCache(t, config.Cache{}, o, nil)
			done := make(chan *http.Response)
			go func() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", "http://example.com/r", nil))
				done <- w.Result()
			}()
			select {
			case <-o.started:
			case <-time.After(5 * time.Second):
				t.Fatal("the GET never reached the origin")
			}
			if purge {
				o.mu.Lock()
				o.version = "new"
				o.mu.Unlock()
				if _, err := h.Purge(t.Context(), "http://example.com/r", false); err != nil {
					t.Fatal(err)
				}
			} else if res := do(h, "POST", "http://example.com/r"); res.StatusCode != http.StatusNoContent {
				t.Fatalf("POST: %d", res.StatusCode)
			}
			close(o.release)
			var first *http.Response
			select {
			case first = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the GET never finished")
			}
			if b := body(t, first); b != "old" {
				t.Fatalf("in-flight GET got %q, want old", b)
			}
			if cs := first.Header.Get("Cache-Status"); cs == "" {
				t.Error("no Cache-Status")
			}
			res := do(h, "GET", "http://example.com/r")
			if b := body(t, res); b != "new" {
				t.Fatalf("GET after the invalidation got %q (Cache-Status %q): the in-flight response was stored",
					b, res.Header.Get("Cache-Status"))
			}
		})
	}
}
