package fastpath

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// inlineServer is a test server that counts the requests answered inside
// the idle wait (serveInline).
func inlineServer(t *testing.T) (*testServer, *atomic.Int64) {
	t.Helper()
	ts := newTestServer(t, Options{IdleTimeout: time.Minute})
	var n atomic.Int64
	ts.fl.servedInside = func() { n.Add(1) }
	return ts, &n
}

// A kept-alive connection's next requests are answered inside the idle
// wait, which then waits again without a read that finds nothing.
func TestKeptAliveRequestsServedInsideTheWait(t *testing.T) {
	ts, inside := inlineServer(t)
	c, br := ts.dial(t)
	for i := 0; i < 5; i++ {
		fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := readResp(t, br, "GET"); r.body != "hello a" {
			t.Fatalf("request %d: body %q", i, r.body)
		}
		time.Sleep(20 * time.Millisecond) // the server waits for the next
	}
	// The first request is read before any wait; the others come to
	// the wait.
	if got := inside.Load(); got != 4 {
		t.Errorf("%d of 5 requests answered inside the wait, want 4", got)
	}
}

// A handler answering inside the wait may look whether the client left:
// ClientGone must not wait for the read lock the wait holds.
func TestClientGoneInsideTheWait(t *testing.T) {
	ts, inside := inlineServer(t)
	c, br := ts.dial(t)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(c, "GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := readResp(t, br, "GET"); r.body != "hello a" {
			t.Fatalf("request %d: body %q", i, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if inside.Load() == 0 {
		t.Error("no request answered inside the wait")
	}
}

// A request that arrives while the one before it is answered inside the
// wait wakes the next wait: the netpoller keeps that readiness, and the
// wait trusts the read that drained the socket only within one call.
func TestRequestArrivingWhileAnsweringInside(t *testing.T) {
	ts, inside := inlineServer(t)
	ts.fast.block = make(chan struct{})
	ts.fast.entered = make(chan struct{}, 1)
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	readResp(t, br, "GET")
	time.Sleep(20 * time.Millisecond)
	fmt.Fprintf(c, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-ts.fast.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not called")
	}
	// The next request arrives while the handler is busy; its
	// readiness reaches the netpoller meanwhile.
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	close(ts.fast.block)
	for i := 0; i < 2; i++ {
		if r := readResp(t, br, "GET"); r.body != "hello a" {
			t.Fatalf("answer %d: body %q", i, r.body)
		}
	}
	if got := inside.Load(); got != 2 {
		t.Errorf("%d requests answered inside the wait, want 2", got)
	}
}
