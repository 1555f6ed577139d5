//go:build linux

package fastpath

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// parkedCount returns the number of parked connections of l.
func parkedCount(l *Listener) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.parker == nil {
		return 0
	}
	return l.parker.byFD.n
}

// parksAtOnce returns how many times a connection of l parked as soon
// as its wait would block.
func parksAtOnce(l *Listener) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.parker == nil {
		return 0
	}
	return l.parker.parksAtOnce
}

// parksSoFar returns how many times a connection of l parked.
func parksSoFar(l *Listener) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.parker == nil {
		return 0
	}
	return l.parker.parks
}

// waitParked waits until n connections of l are parked.
func waitParked(t testing.TB, l *Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for parkedCount(l) != n {
		if time.Now().After(deadline) {
			l.mu.Lock()
			for lk := range l.conns {
				if l.parker.byFD.get(lk.fd) != lk {
					t.Logf("not parked: idle=%d rd=%v rdIdle=%v polled=%v fd=%d", lk.idle.Load(), lk.rd, lk.rdIdle, lk.polled, lk.fd)
				}
			}
			l.mu.Unlock()
			t.Fatalf("%d connections parked, want %d", parkedCount(l), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, c net.Conn, br *bufio.Reader, path, want string) {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	if r := readResp(t, br, "GET"); r.status != 200 || r.body != want || r.close {
		t.Fatalf("GET %s: %d %q close=%v", path, r.status, r.body, r.close)
	}
}

// A parked connection wakes up for its next request, for pipelined ones,
// and for one whose header block comes in pieces; net/http's requests
// are still handed off.
func TestParkedConnResumes(t *testing.T) {
	ts := newTestServer(t, Options{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond})
	c, br := ts.dial(t)
	get(t, c, br, "/a", "hello a")
	waitParked(t, ts.fl, 1)
	get(t, c, br, "/1k", string(ts.fast.files["/1k"]))

	waitParked(t, ts.fl, 1)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /1k HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, m := range []string{"GET", "HEAD", "GET"} {
		r := readResp(t, br, m)
		if r.status != 200 || r.close || (m == "GET" && r.body != "hello a") {
			t.Fatalf("pipelined %d: %d %q close=%v", i, r.status, r.body, r.close)
		}
	}

	waitParked(t, ts.fl, 1)
	fmt.Fprintf(c, "GET /a HT")
	time.Sleep(50 * time.Millisecond)
	fmt.Fprintf(c, "TP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.status != 200 || r.body != "hello a" {
		t.Fatalf("split request: %d %q", r.status, r.body)
	}

	waitParked(t, ts.fl, 1)
	fmt.Fprintf(c, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	if r := readResp(t, br, "POST"); r.status != 200 || r.body != `POST /p "hi"` {
		t.Fatalf("handed off after parking: %d %q", r.status, r.body)
	}
	if got := parksSoFar(ts.fl); got != 4 {
		t.Errorf("parked %d times, want 4", got)
	}
}

// Requests that arrive while the connection is being parked (kicked,
// registering, waking) are all answered: many connections, short random
// pauses around the parking delay, or parking at once (the next request
// then comes as the connection parks).
func TestParkRace(t *testing.T) {
	t.Run("after", func(t *testing.T) {
		testParkRace(t, Options{ParkIdleAfter: time.Millisecond}, 3000)
	})
	t.Run("atOnce", func(t *testing.T) {
		// Pauses around ParkIdleAfter/2: some waits park at once, the
		// others are kicked.
		testParkRace(t, Options{ParkAtOnceAbove: 1, ParkIdleAfter: 2 * time.Millisecond}, 3000)
	})
}

func testParkRace(t *testing.T, opts Options, maxPauseMicros int) {
	opts.ReadHeaderTimeout, opts.IdleTimeout = 2*time.Second, 10*time.Second
	ts := newTestServer(t, opts)
	const conns, rounds = 8, 150
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for r := 0; r < rounds; r++ {
				fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
				if err := expectHelloA(br); err != nil {
					errs <- fmt.Errorf("round %d: %w", r, err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(maxPauseMicros)) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if parksSoFar(ts.fl) == 0 {
		t.Errorf("no connection parked: the test shows nothing")
	}
	if opts.ParkAtOnceAbove > 0 && parksAtOnce(ts.fl) == 0 {
		t.Errorf("no connection parked at once: the test shows nothing")
	}
	t.Logf("%d parks (%d at once) in %d requests", parksSoFar(ts.fl), parksAtOnce(ts.fl), conns*rounds)
}

func expectHelloA(br *bufio.Reader) error {
	const want = "HTTP/1.1 200 OK\r\n"
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if line != want {
		return fmt.Errorf("status line %q", line)
	}
	for {
		line, err = br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, len("hello a"))
	if _, err := io.ReadFull(br, body); err != nil {
		return err
	}
	if string(body) != "hello a" {
		return fmt.Errorf("body %q", body)
	}
	return nil
}

// With more connections than ParkAtOnceAbove, an idle one parks as soon
// as its wait would block, unless its previous request came less than
// ParkIdleAfter/2 before (a busy client): then it waits to be kicked.
func TestParkAtOnce(t *testing.T) {
	const after = 200 * time.Millisecond
	ts := newTestServer(t, Options{IdleTimeout: 10 * time.Second, ParkAtOnceAbove: 1, ParkIdleAfter: after})
	c1, br1 := ts.dial(t)
	c2, br2 := ts.dial(t)
	waitConns(t, ts.fl, 2)
	start := time.Now()
	get(t, c1, br1, "/a", "hello a")
	get(t, c2, br2, "/a", "hello a")
	waitParked(t, ts.fl, 2)
	if d := time.Since(start); d > after/2 {
		t.Errorf("parked after %v, want at once", d)
	}
	// Right after: busy clients, kicked only after ParkIdleAfter.
	get(t, c1, br1, "/1k", string(ts.fast.files["/1k"]))
	get(t, c2, br2, "/a", "hello a")
	start = time.Now()
	time.Sleep(after / 2)
	if n := parkedCount(ts.fl); n != 0 {
		t.Errorf("%d busy connections parked at once", n)
	}
	waitParked(t, ts.fl, 2)
	if d := time.Since(start); d < after {
		t.Errorf("busy connections parked after %v, want >= %v", d, after)
	}
	if n := parksAtOnce(ts.fl); n != 2 {
		t.Errorf("%d parked at once, want 2", n)
	}
	// After a long pause, at once again.
	get(t, c1, br1, "/a", "hello a")
	waitParked(t, ts.fl, 2)
	if n := parksAtOnce(ts.fl); n != 3 {
		t.Errorf("%d parked at once, want 3", n)
	}
	c1.Close()
	waitConns(t, ts.fl, 1)
	// One connection left: not crowded, it parks only when kicked.
	time.Sleep(after)
	get(t, c2, br2, "/a", "hello a")
	waitParked(t, ts.fl, 1)
	if n := parksAtOnce(ts.fl); n != 3 {
		t.Errorf("%d parked at once with one connection open, want 3 still", n)
	}
}

// A client that closes while its connection is parked frees it.
func TestParkedClientCloses(t *testing.T) {
	ts := newTestServer(t, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond})
	c, br := ts.dial(t)
	get(t, c, br, "/a", "hello a")
	waitParked(t, ts.fl, 1)
	c.Close()
	waitConns(t, ts.fl, 0)
	if n := parkedCount(ts.fl); n != 0 {
		t.Errorf("%d still parked", n)
	}
}

// The idle timeout closes a parked connection at its deadline, as it does
// one waiting on its goroutine.
func TestParkedIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	ts := newTestServer(t, Options{ReadHeaderTimeout: time.Second, IdleTimeout: idle, ParkIdleAfter: 50 * time.Millisecond})
	c, br := ts.dial(t)
	get(t, c, br, "/a", "hello a")
	start := time.Now()
	waitParked(t, ts.fl, 1)
	expectEOF(t, br)
	if d := time.Since(start); d < idle-50*time.Millisecond || d > idle+300*time.Millisecond {
		t.Errorf("closed after %v, want about %v", d, idle)
	}
	waitConns(t, ts.fl, 0)
}

// waitConns waits until l serves n connections.
func waitConns(t *testing.T, l *Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for connCount(l) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want %d", connCount(l), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An idle timeout too short to be worth parking for (under 4 times
// ParkIdleAfter) keeps connections on their goroutines.
func TestShortIdleTimeoutNotParked(t *testing.T) {
	ts := newTestServer(t, Options{IdleTimeout: 300 * time.Millisecond, ParkIdleAfter: 100 * time.Millisecond})
	c, br := ts.dial(t)
	get(t, c, br, "/a", "hello a")
	expectEOF(t, br)
	if n := parksSoFar(ts.fl); n != 0 {
		t.Errorf("parked %d times", n)
	}
}

// Shutdown closes parked connections at once; so does http.Server's.
func TestParkedShutdown(t *testing.T) {
	for _, viaHTTP := range []bool{false, true} {
		t.Run(fmt.Sprint("viaHTTP=", viaHTTP), func(t *testing.T) {
			ts := newTestServer(t, Options{IdleTimeout: time.Minute, ParkIdleAfter: 20 * time.Millisecond})
			var brs []*bufio.Reader
			for i := 0; i < 3; i++ {
				c, br := ts.dial(t)
				get(t, c, br, "/a", "hello a")
				brs = append(brs, br)
			}
			waitParked(t, ts.fl, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			var err error
			if viaHTTP {
				err = ts.srv.Shutdown(ctx)
				if err == nil {
					err = ts.fl.Shutdown(ctx)
				}
			} else {
				err = ts.fl.Shutdown(ctx)
			}
			if err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("Shutdown took %v", d)
			}
			for _, br := range brs {
				expectEOF(t, br)
			}
			if n := connCount(ts.fl); n != 0 {
				t.Errorf("%d connections left after Shutdown", n)
			}
		})
	}
}

// A connection behind a wrapper that may buffer (a PROXY-protocol reader)
// is never parked: its bytes may be in the wrapper, not the socket.
func TestOpaqueConnNotParked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &memHandler{files: map[string][]byte{"/a": []byte("hello a")}}
	fl := Listen(opaqueListener{ln}, h, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 10 * time.Millisecond})
	defer fl.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	get(t, c, br, "/a", "hello a")
	time.Sleep(100 * time.Millisecond)
	get(t, c, br, "/a", "hello a")
	if n := parksSoFar(fl); n != 0 {
		t.Errorf("parked %d times", n)
	}
}

// Parked connections hold no goroutine.
func TestParkedConnsHoldNoGoroutine(t *testing.T) {
	ts := newTestServer(t, Options{IdleTimeout: time.Minute, ParkIdleAfter: 20 * time.Millisecond})
	const n = 100
	base := runtime.NumGoroutine()
	for i := 0; i < n; i++ {
		c, br := ts.dial(t)
		get(t, c, br, "/a", "hello a")
	}
	waitParked(t, ts.fl, n)
	// The parked goroutines' last steps, and the workers' linger
	// (worker.go): then none is left for the parked connections.
	deadline := time.Now().Add(2 * time.Second)
	extra := runtime.NumGoroutine() - base
	for extra > 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		extra = runtime.NumGoroutine() - base
	}
	if extra > 10 {
		t.Errorf("%d goroutines more with %d parked connections", extra, n)
	}
}

// parkedBudget bounds what a parked connection costs the engine beyond
// its sockets (TestIdleConnHoldsNoBuffer): its link, its place in the
// maps and the deadline heap, less Go's server-side socket, which it
// lets go (detach.go): a parked connection costs less than an accepted
// net.Conn merely held (about -700 bytes; 415 before detaching).
const parkedBudget = 256

// Parking a connection, which every idle keep-alive connection does,
// allocates nothing (the epoll callbacks are bound once).
func TestParkingAllocatesNothing(t *testing.T) {
	ts := newTestServer(t, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond})
	c, br := ts.dial(t)
	get(t, c, br, "/a", "hello a")
	waitParked(t, ts.fl, 1)
	l := ts.fl
	l.mu.Lock()
	defer l.mu.Unlock()
	var lk *link
	for _, x := range l.parker.byFD.links {
		if x != nil {
			lk = x
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		l.parker.take(lk)
		if err := l.parker.add(lk); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per park, want 0", n)
	}
}
