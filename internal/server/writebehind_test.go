package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// tcpPair is a connected loopback pair: the server side wrapped the way a
// TLS listener wraps it (progressConn with writeTimeout, then
// writeBehindConn), and the raw client side.
func tcpPair(t *testing.T, writeTimeout time.Duration) (*writeBehindConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pl := progressListener{Listener: ln, writeTimeout: writeTimeout, writeBehind: true}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := pl.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c := <-accepted
	wb, ok := c.(*writeBehindConn)
	if !ok {
		t.Fatalf("accepted %T, want *writeBehindConn", c)
	}
	t.Cleanup(func() { wb.Close() })
	return wb, client
}

func TestWriteBehindOnlyWithTimeoutOnTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name    string
		pl      progressListener
		behind  bool
		timeout time.Duration
	}{
		{"tls with timeout", progressListener{Listener: ln, writeTimeout: time.Second, writeBehind: true}, true, time.Second},
		{"tls without timeout", progressListener{Listener: ln, writeBehind: true}, false, 0},
		{"plain", progressListener{Listener: ln, writeTimeout: time.Second}, false, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			go func() {
				if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
					defer c.Close()
					io.Copy(io.Discard, c)
				}
			}()
			c, err := tc.pl.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.(*writeBehindConn); ok != tc.behind {
				t.Errorf("write-behind = %v, want %v", ok, tc.behind)
			}
		})
	}
}

// blockingConn's first Write waits for release; it counts writes and
// keeps what was written.
type blockingConn struct {
	net.Conn
	release chan struct{}
	mu      sync.Mutex
	writes  int
	got     bytes.Buffer
}

func (c *blockingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	first := c.writes == 1
	c.mu.Unlock()
	if first {
		<-c.release
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got.Write(p)
}

func (c *blockingConn) Close() error { return nil }

func TestWriteBehindGathersWritesWhileOneIsOut(t *testing.T) {
	bc := &blockingConn{release: make(chan struct{})}
	wb := newWriteBehindConn(bc)
	var want bytes.Buffer
	for i := range 100 {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 100)
		want.Write(chunk)
		if n, err := wb.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	close(bc.release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		bc.mu.Lock()
		done := bc.got.Len() == want.Len()
		bc.mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if !bytes.Equal(bc.got.Bytes(), want.Bytes()) {
		t.Fatalf("sent %d bytes, not the %d written in order", bc.got.Len(), want.Len())
	}
	// The first write took the first chunk; the 99 written meanwhile go
	// out together.
	if bc.writes > 2 {
		t.Errorf("100 writes made %d writes to the connection, want at most 2", bc.writes)
	}
	// Once all is out, the connection holds no buffer (idle connections
	// cost no memory).
	for time.Now().Before(deadline) {
		wb.mu.Lock()
		idle := !wb.writing
		held := wb.pending != nil || wb.spare != nil
		wb.mu.Unlock()
		if idle {
			if held {
				t.Error("an idle connection keeps its buffers")
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("the helper did not stop")
}

func TestWriteBehindCloseSendsWhatWasWritten(t *testing.T) {
	wb, client := tcpPair(t, 5*time.Second)
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: Writes wait for room
	got := make(chan []byte, 1)
	go func() {
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(client)
		got <- b
	}()
	for off := 0; off < len(want); off += 4000 {
		end := min(off+4000, len(want))
		if _, err := wb.Write(want[off:end]); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client read %d bytes before EOF, want all %d", len(b), len(want))
	}
	if _, err := wb.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

func TestWriteBehindCloseDoesNotWaitForAStuckClient(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	wb, client := tcpPair(t, writeTimeout)
	// The client reads nothing: fill its socket buffers until Write waits.
	filled := make(chan error, 1)
	go func() {
		chunk := make([]byte, 16<<10)
		for {
			if _, err := wb.Write(chunk); err != nil {
				filled <- err
				return
			}
		}
	}()
	readDone := make(chan error, 1)
	go func() {
		_, err := wb.Read(make([]byte, 1))
		readDone <- err
	}()
	time.Sleep(100 * time.Millisecond) // the writer now waits for room
	start := time.Now()
	if err := wb.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Close took %v with a client that does not read", d)
	}
	for name, ch := range map[string]chan error{"a waiting Write": filled, "a Read": readDone} {
		select {
		case err := <-ch:
			if err == nil {
				t.Errorf("%s ended without an error", name)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s still waits after Close", name)
		}
	}
	// Once the helper's write times out, the connection is closed: the
	// client reads what was sent, then EOF or a reset.
	client.SetReadDeadline(time.Now().Add(10 * writeTimeout))
	_, err := io.Copy(io.Discard, client)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open %v after Close", 10*writeTimeout)
	}
}

func TestWriteBehindReportsAFailedWrite(t *testing.T) {
	wb, client := tcpPair(t, 5*time.Second)
	client.(*net.TCPConn).SetLinger(0)
	client.Close() // a reset: the next writes fail
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := wb.Write(make([]byte, 1024)); err != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("Writes kept succeeding after the client reset the connection")
}

// gateConn is a connection whose writes wait for release and then fail
// if the write deadline has passed, as a socket's would: the moment
// between the helper's progressConn setting its deadline and the write
// finishing, held open.
type gateConn struct {
	net.Conn // nil: only Write and the deadlines are used
	entered  chan struct{}
	release  chan struct{}
	mu       sync.Mutex
	deadline time.Time
	got      bytes.Buffer
}

func (g *gateConn) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.deadline.IsZero() && !time.Now().Before(g.deadline) {
		return 0, os.ErrDeadlineExceeded
	}
	return g.got.Write(p)
}

func (g *gateConn) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deadline = t
	return nil
}

func (g *gateConn) SetReadDeadline(time.Time) error { return nil }

func (g *gateConn) SetDeadline(t time.Time) error { return g.SetWriteDeadline(t) }

// TestWriteBehindKeepsAcceptedBytesPastADeadline: crypto/tls, closing a
// connection, queues close_notify and then sets the write deadline to
// now. The response the helper is still sending must go out all the same
// (it used to fail with a timeout: under load, a TLS client sent
// "Connection: close" got no answer at all).
func TestWriteBehindKeepsAcceptedBytesPastADeadline(t *testing.T) {
	g := &gateConn{entered: make(chan struct{}), release: make(chan struct{})}
	wb := newWriteBehindConn(&progressConn{Conn: g, writeTimeout: time.Minute})
	if _, err := wb.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	<-g.entered // the helper's write is under way
	if _, err := wb.Write([]byte("+alert")); err != nil {
		t.Fatal(err)
	}
	wb.SetWriteDeadline(time.Now())
	wb.SetDeadline(time.Now())
	time.Sleep(time.Millisecond) // the deadline is in the past
	go func() {                  // let the later writes in
		for range g.entered {
		}
	}()
	close(g.release)
	wb.mu.Lock()
	for wb.writing {
		wb.changed.Wait()
	}
	err := wb.err
	wb.mu.Unlock()
	close(g.entered)
	if err != nil || g.got.String() != "response+alert" {
		t.Fatalf("sent %q, err %v; want everything that was written", g.got.String(), err)
	}
}
