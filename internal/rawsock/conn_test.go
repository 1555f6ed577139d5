package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// connPair returns the server side of a loopback TCP connection as a
// Conn, and the client side.
func connPair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	server, client := tcpPair(t)
	c, err := NewConn(server)
	if err != nil {
		t.Fatal(err)
	}
	return c, client
}

func TestConnReadWrite(t *testing.T) {
	c, client := connPair(t)
	go client.Write([]byte("hello"))
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}

	// A write bigger than the socket buffers completes as the peer reads.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte)
	go func() {
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(big))))
		got <- b
	}()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("big write: %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not what was written", len(b))
	}

	client.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want EOF", n, err)
	}
}

func TestConnDeadlinesAndClose(t *testing.T) {
	c, _ := connPair(t)
	// A read deadline that passes is a timeout, as net.TCPConn reports it.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	var oe *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read past the deadline: %#v, want an OpError of op read", err)
	}

	// A peer that reads nothing: the write fills the buffers and times out.
	// (Long enough for the first bytes to go out on a loaded machine.)
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := c.Write(make([]byte, 64<<20))
	if !errors.As(err, &ne) || !ne.Timeout() || n <= 0 || n >= 64<<20 {
		t.Fatalf("write to a peer that does not read: %d, %v; want part of it and a timeout", n, err)
	}
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write past the deadline: %#v, want an OpError of op write", err)
	}

	// Close wakes a blocked read with net.ErrClosed.
	c.SetReadDeadline(time.Time{})
	done := make(chan error)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed conn: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the read")
	}
}
