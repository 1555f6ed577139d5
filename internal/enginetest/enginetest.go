// Package enginetest holds the test helpers that several of portico's
// packages share, as net/http/httptest does for net/http: the
// differential harness that runs the same raw requests through both of
// portico's HTTP/1.1 engines (the fast path of package fastpath, and
// net/http) in front of the same handler and compares whole responses,
// and small goroutine-safe sinks for logs and process output.
//
// It is imported by tests only.
package enginetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/fastpath"
)

// Handler is what both engines can serve: a handler with a fast path.
type Handler interface {
	http.Handler
	fastpath.Handler
}

// Fronts is one Handler behind both engines: Fast is a fastpath listener
// (net/http behind it for what the fast path declines), Normal a plain
// net/http server. Both play the same site headers, as portico's site
// layer does.
type Fronts struct {
	Fast, Normal string // listener addresses
	// Served and Declined count the requests the fast path answered and
	// handed to net/http.
	Served, Declined atomic.Int64
}

// Start serves h through both engines until the test ends. site are the
// site's configured headers (canonical name, value), set before h runs.
func Start(t testing.TB, h Handler, site [][2]string) *Fronts {
	t.Helper()
	f := &Fronts{}
	normal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, kv := range site {
			w.Header()[kv[0]] = []string{kv[1]}
		}
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := fastpath.Listen(ln, fastpath.HandlerFunc(func(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
		w.SetDefaultHeaders(site)
		if h.ServeFast(req, w) {
			f.Served.Add(1)
			return true
		}
		f.Declined.Add(1)
		return false
	}), fastpath.Options{IdleTimeout: 10 * time.Second, ReadHeaderTimeout: 5 * time.Second})
	hs := &http.Server{Handler: normal}
	go hs.Serve(fl)
	t.Cleanup(func() { hs.Close(); fl.Close() })
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs2 := &http.Server{Handler: normal}
	go hs2.Serve(ln2)
	t.Cleanup(func() { hs2.Close() })
	f.Fast, f.Normal = fl.Addr().String(), ln2.Addr().String()
	return f
}

// Result is one response as a client read it: everything but Date, which
// Do checks is sent exactly once.
type Result struct {
	Status  int
	Header  http.Header
	Body    string
	TE      []string
	CLen    int64
	Trailer http.Header
	Closed  bool // the response said the connection closes
}

// Do sends raw requests on one connection to addr, each after the answer
// to the one before, and returns their responses.
func Do(t testing.TB, addr string, raws ...string) []Result {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var out []Result
	for _, raw := range raws {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		method, _, _ := strings.Cut(raw, " ")
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading response to %q: %v", raw, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading body of %q: %v", raw, err)
		}
		if n := len(resp.Header["Date"]); n != 1 {
			t.Errorf("%q: %d Date fields, want 1", raw, n)
		}
		resp.Header.Del("Date")
		out = append(out, Result{resp.StatusCode, resp.Header, string(b), resp.TransferEncoding, resp.ContentLength, resp.Trailer, resp.Close})
	}
	return out
}

// Same sends raws through both engines and fails unless the answers agree;
// it returns the fast engine's. wantFast says whether the fast path must
// have served them all (false: it must have served none).
func (f *Fronts) Same(t testing.TB, wantFast bool, raws ...string) []Result {
	t.Helper()
	before := f.Served.Load()
	a := Do(t, f.Fast, raws...)
	// A streamed answer may reach the client before ServeFast returns.
	for i := 0; i < 100 && wantFast && f.Served.Load()-before < int64(len(raws)); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.Served.Load() - before; wantFast && got != int64(len(raws)) || !wantFast && got != 0 {
		t.Errorf("fast path served %d of %d requests, want fast=%v", got, len(raws), wantFast)
	}
	b := Do(t, f.Normal, raws...)
	for i := range a {
		x, y := a[i], b[i]
		if !wantFast {
			// net/http answers both. A streaming handler (CGI) gets a
			// Content-Length when its whole output came before the
			// handler returned, else chunks: timing, not the engine.
			x.TE, x.CLen, y.TE, y.CLen = nil, 0, nil, 0
		}
		if fmt.Sprint(x) != fmt.Sprint(y) {
			t.Errorf("request %q:\nfast:   %+v\nnormal: %+v", raws[i], a[i], b[i])
		}
	}
	return a
}

// Declines sends raw to the fast listener and fails if the fast path
// served it.
func (f *Fronts) Declines(t testing.TB, raw string) Result {
	t.Helper()
	before := f.Served.Load()
	r := Do(t, f.Fast, raw)[0]
	if got := f.Served.Load() - before; got != 0 {
		t.Errorf("fast path served %q, want it declined", raw)
	}
	return r
}

// GET is a raw HTTP/1.1 GET of path for host, with extra header lines
// ("Name: value").
func GET(path, host string, extra ...string) string {
	s := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "\r\n"
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a logger, a
// process's output goroutines) and a reading test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
