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
