package h2

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"portico/internal/devcert"
)

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// An idle connection keeps its read loop and nothing else: the goroutine
// that flushes handlers' responses ends once there is nothing to flush
// (it was a second 8 KiB stack per idle connection).
func TestIdleConnectionKeepsNoFlusher(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	cl := ts.connect(t)
	for id := uint32(1); id <= 7; id += 2 {
		cl.get(id, "/")
		if r := cl.response(id); string(r.body) != "hello" {
			t.Fatalf("stream %d: body %q", id, r.body)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for goroutinesIn("h2.(*conn).flusher") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d flusher goroutines still running on an idle connection", goroutinesIn("h2.(*conn).flusher"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := goroutinesIn("h2.(*conn).serve"); n != 1 {
		t.Fatalf("%d read loops, want 1", n)
	}
	// And it still answers.
	cl.get(9, "/")
	if r := cl.response(9); string(r.body) != "hello" {
		t.Fatalf("after idling: body %q", r.body)
	}
}

// selfSignedTLS is a server config that offers h2, with a certificate
// for localhost from a throwaway development CA (package devcert).
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	files, err := devcert.Make(t.TempDir(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
}

// waitReadBuffers waits until srv's connections hold want read buffers.
func waitReadBuffers(t *testing.T, srv *Server, want int64) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for srv.readBuffers.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("connections hold %d read buffers, want %d", srv.readBuffers.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An idle TLS connection gives its read buffer back, and takes one again
// for the next request; bodies larger than the buffer and several
// requests in a row read right across it.
func TestIdleTLSConnectionHoldsNoReadBuffer(t *testing.T) {
	srv := &Server{}
	serverTLS := selfSignedTLS(t)
	ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(b))
	}), wrapConn(func(nc net.Conn) net.Conn { return tls.Server(nc, serverTLS) }))
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: testTimeout}
	do := func(method, path, body, want string) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+ts.addr+path, strings.NewReader(body))
		if body == "" {
			req.Body = nil
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("%s %s: %v %d %q, want 200 %q", method, path, err, resp.StatusCode, b, want)
		}
	}
	do("GET", "/one", "", "GET /one 0")
	do("POST", "/two", strings.Repeat("z", 200000), "POST /two 200000")
	waitReadBuffers(t, srv, 0)
	do("GET", "/three", "", "GET /three 0")
	waitReadBuffers(t, srv, 0)
}

// Over plain TCP (h2c) the buffer stays: waiting with a one-byte read
// would cost a system call more per wait.
func TestIdlePlainConnectionKeepsItsReadBuffer(t *testing.T) {
	srv := &Server{}
	ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	if r := cl.response(1); string(r.body) != "hello" {
		t.Fatalf("body %q", r.body)
	}
	time.Sleep(50 * time.Millisecond)
	if n := srv.readBuffers.Load(); n != 1 {
		t.Fatalf("the idle connection holds %d read buffers, want 1", n)
	}
}
