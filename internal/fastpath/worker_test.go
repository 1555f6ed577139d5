package fastpath

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// goroutineHandler is memHandler that notes the goroutine of each request.
type goroutineHandler struct {
	memHandler
	mu  sync.Mutex
	ids []string
}

func (h *goroutineHandler) ServeFast(req *Request, w *ResponseWriter) bool {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	h.mu.Lock()
	h.ids = append(h.ids, strings.Fields(string(buf))[1]) // "goroutine N [running]:"
	h.mu.Unlock()
	return h.memHandler.ServeFast(req, w)
}

// A connection that comes while the goroutine of the last one lingers is
// served by that goroutine (its grown stack), not a new one.
func TestNextConnectionReusesTheGoroutine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &goroutineHandler{memHandler: memHandler{files: map[string][]byte{"/a": []byte("hello a")}}}
	fl := Listen(ln, h, Options{})
	defer fl.Close()
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		c.Write([]byte("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		if _, err := br.ReadString(0); err == nil || !strings.Contains(err.Error(), "EOF") {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.Close()
		time.Sleep(10 * time.Millisecond) // the server's side ends too
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ids) != 2 || h.ids[0] != h.ids[1] {
		t.Errorf("goroutines of the two connections: %v, want the same one", h.ids)
	}
}

// A burst of connections that came with their requests, accepted on one
// busy core, is served by few workers: not a goroutine started for each
// before any of them runs (each goroutine's record stays with the
// runtime for good). The first ParkAtOnceAbove connections wait on
// their workers; the rest park at once and leave theirs to the next.
func TestBurstStartsFewWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln := listenAsServer(t)
	const n = 300
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// All of them wait in the listener's backlog, requests sent, before
	// the engine accepts the first.
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	h := &goroutineHandler{memHandler: memHandler{files: map[string][]byte{"/a": []byte("hello a")}}}
	fl := Listen(ln, h, Options{IdleTimeout: 10 * time.Second})
	defer fl.Close()
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if r := readResp(t, bufio.NewReader(c), "GET"); r.status != 200 || r.body != "hello a" {
			t.Fatalf("connection %d: %d %q", i, r.status, r.body)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	workers := map[string]bool{}
	for _, id := range h.ids {
		workers[id] = true
	}
	if max := defaultParkAtOnce + n/8; len(workers) > max {
		t.Errorf("%d connections served by %d goroutines, want at most %d", n, len(workers), max)
	}
	t.Logf("%d connections served by %d goroutines", n, len(workers))
}
