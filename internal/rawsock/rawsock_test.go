package rawsock

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both sides of a loopback TCP connection, closed when
// the test ends.
func tcpPair(t *testing.T) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc.(*net.TCPConn), client
}

// socketPair returns the raw descriptor of the server side of a loopback
// TCP connection (non-blocking, as Go's sockets are) and the client side.
func socketPair(t *testing.T) (int, net.Conn) {
	t.Helper()
	server, client := tcpPair(t)
	rc, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		t.Fatal(err)
	}
	return fd, client
}

// awaitPeek waits until a peek at fd finds something other than Nothing,
// and returns it.
func awaitPeek(t *testing.T, fd int, what string) Peeked {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := Peek(fd); got != Nothing {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReadWritePeek(t *testing.T) {
	fd, client := socketPair(t)
	buf := make([]byte, 16)
	if _, err := Read(fd, buf); err != syscall.EAGAIN {
		t.Fatalf("read of an empty socket: %v, want EAGAIN", err)
	}
	if got := Peek(fd); got != Nothing {
		t.Fatalf("peek of an empty socket: %v, want Nothing", got)
	}
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := awaitPeek(t, fd, "the bytes sent"); got != Bytes {
		t.Fatalf("peek with bytes waiting: %v, want Bytes", got)
	}
	n, err := Read(fd, buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v; want ping", buf[:n], err)
	}
	if n, err := Write(fd, []byte("pong")); n != 4 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := Write(fd, nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := client.Read(got); err != nil || string(got) != "pong" {
		t.Fatalf("client read %q, %v", got, err)
	}
	client.Close()
	if got := awaitPeek(t, fd, "the peer's close"); got != Closed {
		t.Fatalf("peek after the peer closed: %v, want Closed", got)
	}
	if n, err := Read(fd, buf); n != 0 || err != nil {
		t.Fatalf("read after the peer closed: %d, %v; want 0, nil", n, err)
	}
}

// Write takes what the socket takes and says EAGAIN for the rest.
func TestWriteStopsWhenTheSocketIsFull(t *testing.T) {
	fd, _ := socketPair(t)
	big := make([]byte, 64<<20) // more than the socket buffers of both ends
	n, err := Write(fd, big)
	if err != syscall.EAGAIN || n <= 0 || n >= len(big) {
		t.Fatalf("write to a peer that does not read: %d, %v; want part of it and EAGAIN", n, err)
	}
}
