//go:build linux

package fastpath

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"portico/internal/clientip"
)

// detachedCount returns how many parked connections of l hold a bare
// descriptor (Go's socket closed) and a stand-in under their wrappers.
func detachedCount(l *Listener) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	if l.parker == nil {
		return 0
	}
	for _, lk := range l.parker.byFD.links {
		if lk == nil {
			continue
		}
		if _, _, ok := socketUnder(lk.nc); ok && lk.detached && isStandIn(lk.nc) {
			n++
		}
	}
	return n
}

// dialAddrServer starts addrServer with quick parking and detaching after
// detachAfter, and connects to it: the client's connection and reader,
// and the addresses /addr must report.
func dialAddrServer(t *testing.T, detachAfter time.Duration) (*Listener, net.Conn, *bufio.Reader, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := addrServer(t, ln, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond, ParkDetachAfter: detachAfter})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return fl, c, bufio.NewReader(c), c.LocalAddr().String() + " " + ln.Addr().String()
}

// waitDetached waits until n parked connections are detached (the
// parker's timer detaches them, after ParkDetachAfter).
func waitDetached(t testing.TB, l *Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for detachedCount(l) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d parked connections detached from Go's socket, want %d", detachedCount(l), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isStandIn reports whether the socket under nc's wrappers is the stand-in.
func isStandIn(nc net.Conn) bool {
	for i := 0; i < 8; i++ {
		switch c := nc.(type) {
		case detachedSocket:
			return true
		case ReadThrough:
			nc = c.Unwrap()
		default:
			return false
		}
	}
	return false
}

// addrServer answers /addr with the request's remote address and the
// connection's local address.
func addrServer(t *testing.T, ln net.Listener, opts Options) *Listener {
	t.Helper()
	fl := Listen(ln, HandlerFunc(func(req *Request, w *ResponseWriter) bool {
		body := req.RemoteAddr + " " + w.LocalAddr().String()
		w.WriteHeader(200)
		w.AddHeader("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, body)
		return true
	}), opts)
	t.Cleanup(func() { fl.Close() })
	return fl
}

func getAddr(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	fmt.Fprintf(c, "GET /addr HTTP/1.1\r\nHost: x\r\n\r\n")
	r := readResp(t, br, "GET")
	if r.status != 200 {
		t.Fatalf("GET /addr: %d %q", r.status, r.body)
	}
	return r.body
}

// A parked connection lets go of Go's socket (its stand-in is under the
// wrappers, the parker holds a descriptor) and, woken, is served with the
// same remote and local addresses, again and again.
func TestDetachedConnResumes(t *testing.T) {
	fl, c, br, want := dialAddrServer(t, time.Millisecond)
	for round := 0; round < 3; round++ {
		if got := getAddr(t, c, br); got != want {
			t.Fatalf("round %d: addresses %q, want %q", round, got, want)
		}
		waitParked(t, fl, 1)
		waitDetached(t, fl, 1)
	}
	if got := getAddr(t, c, br); got != want {
		t.Fatalf("after parking: addresses %q, want %q", got, want)
	}
}

// Behind internal/clientip's listener (max_conns_per_ip), a parked
// connection keeps its slot: another connection from the same address is
// refused while it is parked, the parked one still wakes and is served
// through the wrappers, and its slot comes free once it closes.
func TestDetachedConnKeepsLimitSlot(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejected := make(chan string, 4)
	ln := clientip.Listen(raw, clientip.ListenOptions{
		MaxConnsPerIP: func() int { return 1 },
		Resolver:      func() *clientip.Resolver { return clientip.New(nil) },
		OnReject:      func(reason string, _ net.Addr) { rejected <- reason },
	})
	fl := addrServer(t, ln, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond, ParkDetachAfter: time.Millisecond})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	a, abr := dial()
	defer a.Close()
	want := a.LocalAddr().String() + " " + raw.Addr().String()
	if got := getAddr(t, a, abr); got != want {
		t.Fatalf("addresses %q, want %q", got, want)
	}
	waitParked(t, fl, 1)
	waitDetached(t, fl, 1) // clientip's wrappers must take a new socket
	b, bbr := dial()
	defer b.Close()
	fmt.Fprintf(b, "GET /addr HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, err := bbr.ReadString('\n'); err == nil {
		t.Fatalf("a second connection from the address was served while the first is parked: %q", line)
	}
	select {
	case r := <-rejected:
		if r != "conn_limit" {
			t.Errorf("rejected for %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no conn_limit rejection")
	}
	if got := getAddr(t, a, abr); got != want {
		t.Fatalf("woken: addresses %q, want %q", got, want)
	}
	a.Close()
	waitConns(t, fl, 0)
	c, cbr := dial()
	defer c.Close()
	if got := getAddr(t, c, cbr); !strings.HasSuffix(got, " "+raw.Addr().String()) {
		t.Fatalf("after the first closed: %q", got)
	}
}

// A connection that sent a PROXY header is parked and let go of Go's
// socket once the bytes after the header are taken (clientip's PROXY
// reader then reads through), and keeps the header's client address
// across parking, detaching and waking.
func TestProxyProtocolConnParksAndKeepsAddress(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trusted := clientip.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	ln := clientip.Listen(raw, clientip.ListenOptions{
		ProxyProtocol: func() bool { return true },
		HeaderTimeout: time.Second,
		MaxConnsPerIP: func() int { return 1 },
		Resolver:      func() *clientip.Resolver { return trusted },
		OnReject:      func(string, net.Addr) {},
	})
	fl := addrServer(t, ln, Options{IdleTimeout: 10 * time.Second, ParkIdleAfter: 20 * time.Millisecond, ParkDetachAfter: time.Millisecond})
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	// The header and the first request in one write: go-proxyproto's
	// buffer holds the request's start, which must not be lost.
	fmt.Fprintf(c, "PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\nGET /addr HTTP/1.1\r\nHost: x\r\n\r\n")
	const want = "203.0.113.7:40000 192.0.2.1:80"
	if r := readResp(t, br, "GET"); r.status != 200 || r.body != want {
		t.Fatalf("first request: %d %q, want the PROXY header's %q", r.status, r.body, want)
	}
	for round := 0; round < 3; round++ {
		waitParked(t, fl, 1)
		waitDetached(t, fl, 1)
		if got := getAddr(t, c, br); got != want {
			t.Fatalf("round %d: addresses %q, want %q", round, got, want)
		}
	}
}

// A connection parked for less than ParkDetachAfter keeps Go's socket: it
// wakes without rebuilding one.
func TestShortParkKeepsSocket(t *testing.T) {
	fl, c, br, want := dialAddrServer(t, time.Hour)
	for round := 0; round < 2; round++ {
		if got := getAddr(t, c, br); got != want {
			t.Fatalf("round %d: addresses %q, want %q", round, got, want)
		}
		waitParked(t, fl, 1)
		time.Sleep(100 * time.Millisecond) // several timer rounds
		if n := detachedCount(fl); n != 0 {
			t.Fatalf("round %d: %d connections detached after a short park, want 0", round, n)
		}
	}
}
