package fastpath

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"portico/internal/rawsock"
)

// listenAsServer listens on loopback as portico's plain-HTTP listeners
// do: connections accepted raw, as *rawsock.Socket.
func listenAsServer(t testing.TB) net.Listener {
	t.Helper()
	return listenRaw(t, net.ListenConfig{})
}

// listenDeferred is listenAsServer with portico's TCP_DEFER_ACCEPT too:
// a connection is accepted once its first bytes are there (so its first
// read finds them; a silent one waits about a second to be accepted).
func listenDeferred(t testing.TB) net.Listener {
	t.Helper()
	return listenRaw(t, net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
		})
	}})
}

func listenRaw(t testing.TB, lc net.ListenConfig) net.Listener {
	t.Helper()
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := rawsock.NewListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// attachedCount returns how many of l's connections accepted raw have a
// Go socket attached, and how many were accepted raw.
func attachedCount(l *Listener) (attached, raw int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for lk := range l.conns {
		if s := rawSocketUnder(lk.nc); s != nil {
			raw++
			if s.Attached() {
				attached++
			}
		}
	}
	return attached, raw
}

// On a crowded server a connection accepted raw parks as soon as its
// wait would block, without ever getting a Go socket (a netpoller
// registration and its pollDesc, kept by the runtime for good), and is
// served raw again when its next request wakes it.
func TestRawConnParksWithoutGoSocket(t *testing.T) {
	ln := listenDeferred(t)
	fl := addrServer(t, ln, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond, ParkAtOnceAbove: 1})
	type client struct {
		c    net.Conn
		br   *bufio.Reader
		want string
	}
	// The first connection is alone (not crowded): it waits on its
	// goroutine, which attaches a Go socket. The others are not.
	var clients []client
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		clients = append(clients, client{c, bufio.NewReader(c), c.LocalAddr().String() + " " + ln.Addr().String()})
		if i == 0 {
			getAddr(t, c, clients[0].br)
		}
	}
	for round := 0; round < 3; round++ {
		for i, cl := range clients {
			if got := getAddr(t, cl.c, cl.br); got != cl.want {
				t.Fatalf("round %d, client %d: addresses %q, want %q", round, i, got, cl.want)
			}
		}
		waitParked(t, fl, len(clients))
		if a, r := attachedCount(fl); a != 1 || r != len(clients) {
			t.Fatalf("round %d: %d of %d raw connections have a Go socket, want the first one's only", round, a, r)
		}
		time.Sleep(30 * time.Millisecond) // not a busy client: parks at once again
	}
	if n := parksAtOnce(fl); n < 3*(len(clients)-1) {
		t.Errorf("%d parks at once, want at least %d", n, 3*(len(clients)-1))
	}
}

// A connection accepted raw that waits on its goroutine (few
// connections) gets a Go socket for the wait; parked long, it lets go of
// it, and is served raw when it wakes.
func TestRawConnDetachesItsGoSocket(t *testing.T) {
	ln := listenAsServer(t)
	fl := addrServer(t, ln, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond, ParkDetachAfter: time.Millisecond})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	want := c.LocalAddr().String() + " " + ln.Addr().String()
	for round := 0; round < 3; round++ {
		if got := getAddr(t, c, br); got != want {
			t.Fatalf("round %d: addresses %q, want %q", round, got, want)
		}
		waitParked(t, fl, 1)
		deadline := time.Now().Add(5 * time.Second)
		for {
			a, r := attachedCount(fl)
			if r != 1 {
				t.Fatalf("%d connections accepted raw, want 1", r)
			}
			if a == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the parked connection kept its Go socket")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	fl.mu.Lock()
	detaches := fl.parker.detaches
	fl.mu.Unlock()
	if detaches < 3 {
		t.Errorf("%d detaches, want 3 (one per round: the wait on the goroutine attached a Go socket)", detaches)
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A connection accepted raw has no finalizer to close its descriptor (a
// net.Conn's netFD has): every way a connection ends must close it, and
// its attached Go socket's duplicate. Each client below ends another way;
// once the server is shut down, the process holds the descriptors it
// held before.
func TestRawConnsLeakNoDescriptors(t *testing.T) {
	before := openFDs(t)
	ts := newTestServer(t, Options{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond,
		ParkIdleAfter: 20 * time.Millisecond, ParkAtOnceAbove: 4, ParkDetachAfter: time.Millisecond})
	endings := []func(c net.Conn, br *bufio.Reader){
		func(c net.Conn, br *bufio.Reader) { // keep-alive, then the client closes
			for i := 0; i < 3; i++ {
				fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
				readResp(t, br, "GET")
			}
		},
		func(c net.Conn, br *bufio.Reader) { // Connection: close
			fmt.Fprintf(c, "GET /1k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			readResp(t, br, "GET")
			expectEOF(t, br)
		},
		func(c net.Conn, br *bufio.Reader) { // handed to net/http, which closes
			fmt.Fprintf(c, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
			readResp(t, br, "POST")
			expectEOF(t, br)
		},
		func(c net.Conn, br *bufio.Reader) { // handed off, then idle until net/http's timeout
			fmt.Fprintf(c, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
			readResp(t, br, "POST")
			expectEOF(t, br)
		},
		func(c net.Conn, br *bufio.Reader) { // half a request, then a reset
			fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHo")
			time.Sleep(30 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0)
		},
		func(c net.Conn, br *bufio.Reader) { // silent until the header timeout
			expectEOF(t, br)
		},
		func(c net.Conn, br *bufio.Reader) { // kept alive, parked, idle timeout
			fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			readResp(t, br, "GET")
			expectEOF(t, br)
		},
		func(c net.Conn, br *bufio.Reader) { // a big answer the client never reads
			fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(50 * time.Millisecond)
		},
	}
	var wg sync.WaitGroup
	for round := 0; round < 3; round++ {
		for _, end := range endings {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				end(c, bufio.NewReader(c))
			}()
		}
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
	ts.fl.Shutdown(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after the server shut down, %d before", openFDs(t), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
