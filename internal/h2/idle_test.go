package h2

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
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
