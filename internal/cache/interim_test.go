package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
)

// RFC 9110 section 15.2 and RFC 9111 section 3: an interim response (103
// Early Hints) is passed on to the client, and neither it nor its fields
// are stored: the hit that follows has no 103 and no Link of the 103.
func TestInterimRelayedNeverStored(t *testing.T) {
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "final")
	})
	h := newTestCache(t, config.Cache{}, origin, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func() (interim []int, res *http.Response, body string) {
		t.Helper()
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
			if hdr.Get("Link") == "" {
				t.Errorf("%d without its Link", code)
			}
			interim = append(interim, code)
			return nil
		}}
		req, _ := http.NewRequest("GET", srv.URL+"/p", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return interim, res, string(b)
	}
	interim, res, b := get()
	if len(interim) != 1 || interim[0] != http.StatusEarlyHints {
		t.Errorf("miss: interim responses %v, want [103]", interim)
	}
	if res.StatusCode != 200 || b != "final" || res.Header.Get("Link") != "" {
		t.Errorf("miss: %d %q Link %q", res.StatusCode, b, res.Header.Get("Link"))
	}
	interim, res, b = get()
	if len(interim) != 0 || res.Header.Get("Link") != "" || b != "final" || hits.Load() != 1 {
		t.Errorf("hit: interim %v, Link %q, body %q, origin hits %d (want a clean hit)", interim, res.Header.Get("Link"), b, hits.Load())
	}
}

// RFC 9111 section 4.3.2: a stored response without Last-Modified answers
// If-Modified-Since by its Date.
func TestIMSAgainstDateWithoutLastModified(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "x", "Cache-Control", "max-age=600")
	h := newTestCache(t, config.Cache{}, o, clock)
	do(h, "GET", "http://a.test/d")
	later := clock.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	earlier := clock.Now().Add(-time.Minute).UTC().Format(http.TimeFormat)
	if res := do(h, "GET", "http://a.test/d", "If-Modified-Since", later); res.StatusCode != http.StatusNotModified {
		t.Errorf("IMS after Date: %d, want 304", res.StatusCode)
	}
	if res := do(h, "GET", "http://a.test/d", "If-Modified-Since", earlier); res.StatusCode != http.StatusOK {
		t.Errorf("IMS before Date: %d, want 200", res.StatusCode)
	}
}
