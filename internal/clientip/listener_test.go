package clientip

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serveOne accepts one connection of ln, reads what the peer sends and
// reports the connection's RemoteAddr and the read's outcome.
func serveOne(t *testing.T, ln net.Listener) (remote chan string, data chan string) {
	remote, data = make(chan string, 1), make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			remote <- "accept: " + err.Error()
			data <- ""
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		remote <- c.RemoteAddr().String()
		if err != nil {
			data <- "error: " + err.Error()
			return
		}
		data <- string(buf[:n])
	}()
	return remote, data
}

func listen(t *testing.T, opts ListenOptions) net.Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(raw, opts)
	t.Cleanup(func() { ln.Close() })
	return ln
}

func send(t *testing.T, addr, s string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProxyProtocolFromTrustedPeer(t *testing.T) {
	res := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	ln := listen(t, ListenOptions{ProxyProtocol: func() bool { return true }, HeaderTimeout: time.Second, Resolver: func() *Resolver { return res }})
	remote, data := serveOne(t, ln)
	send(t, ln.Addr().String(), "PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\nGET / HTTP/1.1\r\n")
	if got := <-remote; got != "192.0.2.1:1234" {
		t.Errorf("RemoteAddr = %q, want the PROXY header's source", got)
	}
	if got := <-data; got != "GET / HTTP/1.1\r\n" {
		t.Errorf("read %q, want the request after the header", got)
	}
}

func TestProxyProtocolFromUntrustedPeerIsClosed(t *testing.T) {
	var mu sync.Mutex
	var rejected []string
	ln := listen(t, ListenOptions{ProxyProtocol: func() bool { return true }, HeaderTimeout: time.Second, Resolver: func() *Resolver { return New(nil) },
		OnReject: func(reason string, _ net.Addr) { mu.Lock(); rejected = append(rejected, reason); mu.Unlock() }})
	remote, data := serveOne(t, ln)
	send(t, ln.Addr().String(), "PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\nGET / HTTP/1.1\r\n")
	if got := <-remote; got == "192.0.2.1:1234" {
		t.Errorf("an untrusted peer chose its address: %q", got)
	}
	if got := <-data; got[:6] != "error:" {
		t.Errorf("read %q, want an error (the connection is closed)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rejected) != 1 || rejected[0] != "proxy_header" {
		t.Errorf("rejections %q, want [proxy_header]", rejected)
	}
}

func TestProxyProtocolListenerServesPlainRequests(t *testing.T) {
	ln := listen(t, ListenOptions{ProxyProtocol: func() bool { return true }, HeaderTimeout: time.Second, Resolver: func() *Resolver { return New(nil) }})
	remote, data := serveOne(t, ln)
	send(t, ln.Addr().String(), "GET / HTTP/1.1\r\n")
	if got := <-remote; got[:10] != "127.0.0.1:" {
		t.Errorf("RemoteAddr = %q, want the peer", got)
	}
	if got := <-data; got != "GET / HTTP/1.1\r\n" {
		t.Errorf("read %q", got)
	}
}

func TestMaxConnsPerIP(t *testing.T) {
	ln := listen(t, ListenOptions{Resolver: func() *Resolver { return nil }, MaxConnsPerIP: func() int { return 1 }})
	r1, d1 := serveOne(t, ln)
	c1 := send(t, ln.Addr().String(), "one")
	<-r1
	if got := <-d1; got != "one" {
		t.Fatalf("first connection read %q", got)
	}
	// The first server-side conn is closed by serveOne now; hold one open.
	held := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		c.Read(make([]byte, 8))
		held <- c
	}()
	send(t, ln.Addr().String(), "two")
	c2 := <-held
	defer c2.Close()
	r3, d3 := serveOne(t, ln)
	send(t, ln.Addr().String(), "three")
	<-r3
	if got := <-d3; got != "error: "+errTooManyConns.Error() {
		t.Errorf("third connection read %q, want it refused", got)
	}
	c2.Close()
	c1.Close()
	r4, d4 := serveOne(t, ln)
	send(t, ln.Addr().String(), "four")
	<-r4
	if got := <-d4; got != "four" {
		t.Errorf("after a close, a new connection read %q, want it served", got)
	}
}

// TestMaxConnsPerIPExemptsTrustedProxies: a trusted proxy's connections
// carry many clients and are not counted.
func TestMaxConnsPerIPExemptsTrustedProxies(t *testing.T) {
	res := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	ln := listen(t, ListenOptions{Resolver: func() *Resolver { return res }, MaxConnsPerIP: func() int { return 1 }})
	held := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		c.Read(make([]byte, 8))
		held <- c
	}()
	send(t, ln.Addr().String(), "one")
	c1 := <-held
	defer c1.Close()
	r2, d2 := serveOne(t, ln)
	send(t, ln.Addr().String(), "two")
	<-r2
	if got := <-d2; got != "two" {
		t.Errorf("second connection from a trusted proxy read %q, want it served", got)
	}
}

// With neither a PROXY header to read nor a connection limit at accept,
// a connection comes unwrapped (a wrapper costs memory per connection and
// a call per read and write); with either, it is wrapped.
func TestAcceptWrapsOnlyWhatApplies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		proxy     bool
		max       int
		wantPlain bool
	}{
		{"nothing applies", false, 0, true},
		{"a connection limit", false, 2, false},
		{"PROXY headers", true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t, ListenOptions{
				ProxyProtocol: func() bool { return tc.proxy },
				Resolver:      func() *Resolver { return New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}) },
				MaxConnsPerIP: func() int { return tc.max },
				OnReject:      func(string, net.Addr) {},
			})
			got := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- nil
					return
				}
				got <- c
			}()
			msg := "GET / HTTP/1.1\r\n\r\n"
			if tc.proxy {
				msg = "PROXY TCP4 192.0.2.7 127.0.0.1 1234 80\r\n" + msg
			}
			send(t, ln.Addr().String(), msg)
			c := <-got
			if c == nil {
				t.Fatal("accept failed")
			}
			defer c.Close()
			if _, plain := c.(*net.TCPConn); plain != tc.wantPlain {
				t.Errorf("accepted a %T, want plain TCP: %v", c, tc.wantPlain)
			}
		})
	}
}

// addrCountListener counts what its connections are asked of their
// addresses.
type addrCountListener struct {
	net.Listener
	remote, local atomic.Int32
}

type addrCountConn struct {
	net.Conn
	l *addrCountListener
}

func (l *addrCountListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return addrCountConn{c, l}, nil
}

func (c addrCountConn) RemoteAddr() net.Addr { c.l.remote.Add(1); return c.Conn.RemoteAddr() }
func (c addrCountConn) LocalAddr() net.Addr  { c.l.local.Add(1); return c.Conn.LocalAddr() }

// Accepting asks nothing of a connection's addresses while PROXY
// protocol is off, and never its local one (on a wildcard listener
// that is a getsockname per connection, whose answer a socket accepted
// raw would keep).
func TestProxyListenerAsksNoAddressItDoesNotNeed(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		counted := &addrCountListener{Listener: raw}
		ln := Listen(counted, ListenOptions{
			ProxyProtocol: func() bool { return proxy },
			Resolver:      func() *Resolver { return New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}) },
		})
		remote, data := serveOne(t, ln)
		msg := "hello"
		if proxy {
			msg = "PROXY TCP4 192.0.2.7 127.0.0.1 1234 80\r\n" + msg
		}
		send(t, ln.Addr().String(), msg)
		if got := <-data; got != "hello" {
			t.Errorf("proxy %v: read %q", proxy, got)
		}
		<-remote
		if n := counted.local.Load(); n != 0 {
			t.Errorf("proxy %v: LocalAddr asked %d times", proxy, n)
		}
		// serveOne asks once itself.
		if n := counted.remote.Load(); !proxy && n != 1 {
			t.Errorf("proxy off: RemoteAddr asked %d times, want only serveOne's", n)
		}
		ln.Close()
	}
}

// A PROXY connection reads through once the bytes go-proxyproto buffered
// after the header are taken: then it reads the socket itself, keeps the
// header's addresses, and takes another socket when the fast path parks
// it (Rewrap) without losing them.
func TestProxyConnReadsThroughAfterTheHeader(t *testing.T) {
	client, pc := acceptProxyConn(t, "first")
	c := net.Conn(pc)
	if pc.ReadsThroughNow() {
		t.Fatal("reads through before the header is read")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "first" {
		t.Fatalf("read %q, %v; want the bytes after the header", buf[:n], err)
	}
	if !pc.ReadsThroughNow() {
		t.Fatal("still not reading through after a 4 KiB read took go-proxyproto's buffer")
	}
	if got := c.RemoteAddr().String(); got != "192.0.2.1:1234" {
		t.Errorf("RemoteAddr %q", got)
	}
	if got := c.LocalAddr().String(); got != "192.0.2.2:80" {
		t.Errorf("LocalAddr %q", got)
	}
	// What the fast path does to a parked connection: the wrapper gets
	// another socket over the same descriptor (here: the same socket
	// under a wrapper that counts reads).
	counted := &countingConn{Conn: pc.Unwrap()}
	pc.Rewrap(counted)
	io.WriteString(client, "second")
	n, err = c.Read(buf)
	if err != nil || string(buf[:n]) != "second" || counted.reads.Load() != 1 {
		t.Fatalf("after Rewrap: read %q, %v, through the new socket %d times", buf[:n], err, counted.reads.Load())
	}
	if got := c.RemoteAddr().String(); got != "192.0.2.1:1234" {
		t.Errorf("after Rewrap: RemoteAddr %q", got)
	}
}

// A small first Read leaves bytes in go-proxyproto's buffer: the
// connection does not read through yet, and loses nothing.
func TestProxyConnSmallReadsKeepTheBuffer(t *testing.T) {
	_, c := acceptProxyConn(t, "abcdefgh")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	small := make([]byte, 3)
	for len(got) < 8 {
		n, err := c.Read(small)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, small[:n]...)
		if c.ReadsThroughNow() {
			t.Fatalf("reads through after a %d-byte read", len(small))
		}
	}
	if string(got) != "abcdefgh" {
		t.Errorf("read %q", got)
	}
}

// acceptProxyConn connects to a PROXY-protocol listener trusting
// loopback, sends a v1 header (client 192.0.2.1:1234, server 192.0.2.2:80)
// and then after, and returns the client's end and the accepted connection.
func acceptProxyConn(t *testing.T, after string) (net.Conn, *proxyConn) {
	t.Helper()
	res := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	ln := listen(t, ListenOptions{ProxyProtocol: func() bool { return true }, HeaderTimeout: time.Second, Resolver: func() *Resolver { return res }})
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client := send(t, ln.Addr().String(), "PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n"+after)
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close() })
	pc, ok := c.(*proxyConn)
	if !ok {
		t.Fatalf("accepted a %T", c)
	}
	return client, pc
}

// countingConn counts the reads made through it.
type countingConn struct {
	net.Conn
	reads atomic.Int32
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}
