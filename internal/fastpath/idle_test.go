package fastpath

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleMode is how idleCostOf's connections wait.
type idleMode int

const (
	idleHeld      idleMode = iota // accepted and held: no engine (the sockets' floor)
	idleGoroutine                 // waiting on their goroutines (parking off)
	idleParked                    // parked (park.go), where the system can
	idleWrapped                   // behind a wrapper that may buffer: goroutine and read buffer
)

// idleCost opens n keep-alive connections to a fast-path listener on
// loopback, each answered one request and then left idle, and returns the
// heap and stack bytes per connection they hold (runtime.MemStats
// HeapInuse+StackInuse, after a GC, over n): the server's side and the
// client's sockets. idleHeld gives the floor of the sockets alone, to
// subtract.
func idleCost(tb testing.TB, n int, mode idleMode) float64 {
	heap, stack, _ := idleCostOf(tb, n, mode)
	return heap + stack
}

// idleCostOf is idleCost, heap and stacks apart, and the growth of the
// process's anonymous RSS per connection (client side included; the
// parker's memory release, if one came, included too).
func idleCostOf(tb testing.TB, n int, mode idleMode) (heap, stack, rss float64) {
	tb.Helper()
	hold := mode == idleHeld
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if mode == idleWrapped {
		ln = opaqueListener{ln}
	}
	held := make(chan net.Conn, n)
	var fl *Listener
	if hold {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held <- c
			}
		}()
		defer func() {
			ln.Close()
			for len(held) > 0 {
				(<-held).Close()
			}
		}()
	} else {
		h := &memHandler{files: map[string][]byte{"/1k": []byte(strings.Repeat("x", 1024))}}
		park := -time.Second
		if mode == idleParked {
			park = 20 * time.Millisecond
		}
		// Parked connections detach at once: the cost of one idle for
		// long (ParkDetachAfter).
		fl = Listen(ln, h, Options{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, WriteTimeout: 10 * time.Second, ParkIdleAfter: park, ParkDetachAfter: time.Millisecond})
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			fl.Shutdown(ctx)
		}()
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var before, after runtime.MemStats
	settle()
	runtime.ReadMemStats(&before)
	debug.FreeOSMemory() // the baseline as lean as the parker's release makes the end
	rss0 := rssAnon()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if hold {
			continue
		}
		c.SetDeadline(deadline)
		if _, err := io.WriteString(c, benchRequest); err != nil {
			tb.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 2048), nil)
		if err != nil {
			tb.Fatalf("connection %d: %v", i, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
			tb.Fatalf("connection %d: status %d, %v", i, resp.StatusCode, err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the last answers' goroutines reach their idle wait
	if mode == idleParked && fl.parker != nil {
		waitParked(tb, fl, n)
		waitDetached(tb, fl, n)
		time.Sleep(20 * time.Millisecond) // the last parked goroutines end
	}
	rss = float64(rssAnon()-rss0) / float64(n)
	settle()
	runtime.ReadMemStats(&after)
	return float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(n),
		float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n), rss
}

// rssAnon returns the process's anonymous resident memory in bytes (0
// where /proc does not tell).
func rssAnon() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssAnon:" {
			kib, _ := strconv.ParseInt(f[1], 10, 64)
			return kib << 10
		}
	}
	return 0
}

// opaqueListener hides its connections' type from the engine.
type opaqueListener struct{ net.Listener }

type opaqueConn struct{ net.Conn }

func (l opaqueListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return opaqueConn{c}, nil
}

// settle lets what an earlier measurement freed go: goroutines ending,
// sync.Pool's victim cache (two GCs).
func settle() {
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkIdleConns reports what an idle keep-alive connection costs the
// fast path: B/idle-conn is heap+stack per connection (server and client
// side, sockets included) once parked, of which stack-B/conn goroutine
// stacks; sockets-B/conn the same for connections merely held open (the
// floor); engine-B/conn the difference; unparked-engine-B/conn the
// engine's cost with parking off (waiting on their goroutines);
// rss-B/conn the growth of the anonymous RSS per parked connection (both
// sides). Run with
// -benchtime=1x: each iteration opens 2,000 connections (4,000 sockets)
// three times.
func BenchmarkIdleConns(b *testing.B) {
	const n = 2000
	var total, stack, floor, unparked, rss float64
	for b.Loop() {
		floor += idleCost(b, n, idleHeld)
		unparked += idleCost(b, n, idleGoroutine)
		h, s, r := idleCostOf(b, n, idleParked)
		total += h + s
		stack += s
		rss += r
	}
	runs := float64(b.N)
	b.ReportMetric(total/runs, "B/idle-conn")
	b.ReportMetric(stack/runs, "stack-B/conn")
	b.ReportMetric(floor/runs, "sockets-B/conn")
	b.ReportMetric((total-floor)/runs, "engine-B/conn")
	b.ReportMetric((unparked-floor)/runs, "unparked-engine-B/conn")
	b.ReportMetric(rss/runs, "rss-B/conn")
}

// An idle keep-alive connection holds no read buffer (nor output buffer):
// one waiting on its goroutine costs about one buffer (4 KiB) less than
// one that must keep it because the engine cannot wait on its socket (a
// wrapper that may buffer); a parked one costs the engine little beyond
// the sockets (no goroutine, no conn).
func TestIdleConnHoldsNoBuffer(t *testing.T) {
	const n = 1000
	goroutineBudget := 8192.0
	if raceEnabled {
		goroutineBudget = 16384 // its stack grows past 8 KiB under -race
	}
	var saved, engine, parked float64
	for try := 0; try < 3; try++ { // GC noise: the best of three
		floor := idleCost(t, n, idleHeld)
		holding := idleCost(t, n, idleWrapped)
		waiting := idleCost(t, n, idleGoroutine)
		saved, engine = holding-waiting, waiting-floor
		parked = idleCost(t, n, idleParked) - floor
		if saved >= 3072 && engine < goroutineBudget && parked < parkedBudget {
			break
		}
	}
	t.Logf("idle connection: engine %.0f bytes on its goroutine, %.0f saved by not holding the read buffer, %.0f parked", engine, saved, parked)
	if saved < 3072 {
		t.Errorf("an idle connection holds its read buffer: %.0f bytes saved, want about 4096", saved)
	}
	if engine >= goroutineBudget {
		t.Errorf("an idle connection costs the engine %.0f bytes, want < %.0f", engine, goroutineBudget)
	}
	if parked >= parkedBudget {
		t.Errorf("a parked connection costs the engine %.0f bytes, want < %d", parked, parkedBudget)
	}
}

// BenchmarkNewConnPerRequest is one request per connection on loopback
// (dial, GET with "Connection: close", read to the end, close): what
// accept, the first read and close cost, client side included.
func BenchmarkNewConnPerRequest(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := &memHandler{files: map[string][]byte{"/1k": []byte(strings.Repeat("x", 1024))}}
	fl := Listen(ln, h, Options{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, WriteTimeout: 10 * time.Second})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fl.Shutdown(ctx)
	}()
	req := []byte("GET /1k HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	addr := ln.Addr().String()
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(req)
		n := 0
		for {
			k, err := c.Read(buf[n:])
			n += k
			if err != nil {
				break
			}
		}
		c.Close()
		if n < 1024 {
			b.Fatalf("short answer: %q", buf[:n])
		}
	}
}

// remoteAddrOf a socket accepted raw, which keeps its peer's address as
// a value, is what net/http's RemoteAddr would be.
func TestRemoteAddrOfRawSocket(t *testing.T) {
	ln := listenAsServer(t)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := remoteAddrOf(c), c.RemoteAddr().String(); got != want || want != client.LocalAddr().String() {
		t.Errorf("remoteAddrOf %q, RemoteAddr %q, client %s", got, want, client.LocalAddr())
	}
	if got, want := remoteAddrOf(opaqueConn{c}), c.RemoteAddr().String(); got != want {
		t.Errorf("remoteAddrOf another net.Conn %q, want %q", got, want)
	}
}

// remoteAddrString formats as net.Addr.String does (net/http's RemoteAddr).
func TestRemoteAddrString(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80},
		&net.TCPAddr{IP: net.IP{10, 1, 2, 3}, Port: 65535},
		&net.TCPAddr{IP: net.IPv4(192, 168, 0, 1).To16(), Port: 0},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443},
		&net.TCPAddr{IP: net.ParseIP("::ffff:1.2.3.4"), Port: 8080},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"},
		&net.TCPAddr{},
		&net.UnixAddr{Name: "/run/x.sock", Net: "unix"},
	} {
		if got, want := remoteAddrString(a), a.String(); got != want {
			t.Errorf("%#v: got %q, want %q", a, got, want)
		}
	}
	a := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	if n := testing.AllocsPerRun(100, func() { remoteAddrString(a) }); n > 1 {
		t.Errorf("%v allocations, want 1", n)
	}
}
