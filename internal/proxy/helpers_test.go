package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
)

// testUpstream is a real HTTP server on 127.0.0.1 that counts its TCP
// connections and requests.
type testUpstream struct {
	URL   string
	Addr  string
	srv   *http.Server
	ln    net.Listener
	conns atomic.Int64 // new TCP connections
	reqs  atomic.Int64
	once  sync.Once
}

func startUpstream(t testing.TB, h http.Handler) *testUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveUpstream(t, ln, h)
}

func serveUpstream(t testing.TB, ln net.Listener, h http.Handler) *testUpstream {
	u := &testUpstream{ln: ln, Addr: ln.Addr().String()}
	u.URL = "http://" + u.Addr
	if ln.Addr().Network() == "unix" {
		u.URL = "unix:" + u.Addr
	}
	u.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.reqs.Add(1)
			h.ServeHTTP(w, r)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.conns.Add(1)
			}
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go u.srv.Serve(ln)
	t.Cleanup(u.Kill)
	return u
}

// Kill closes the listener and every connection at once (a crash).
func (u *testUpstream) Kill() { u.once.Do(func() { u.srv.Close() }) }

// named answers with its name, so tests see who served a request.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, name)
	})
}

func testLogger() (*slog.Logger, *enginetest.SyncBuffer) {
	b := &enginetest.SyncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func newHandler(t testing.TB, cfg config.Proxy, opts Options) *Handler {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger, _ = testLogger()
	}
	cfg.SetDefaults() // as config.Load does: New trusts the config
	h, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// front serves h on a real listener, as the server package would.
func front(t testing.TB, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// serve runs one request through h directly (no front listener), with the
// given peer address.
func serve(h http.Handler, method, target, remote string, hdr http.Header) *httptest.ResponseRecorder {
	return recorderServe(h, httptestRequest(method, target, remote, hdr))
}

func httptestRequest(method, target, remote string, hdr http.Header) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	for k, v := range hdr {
		r.Header[k] = v
	}
	return r
}

func recorderServe(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func body(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	return strings.TrimSpace(w.Body.String())
}

// deadPort returns a 127.0.0.1 address where nothing listens.
func deadPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func ms(n int) config.Duration { return config.Duration(time.Duration(n) * time.Millisecond) }
