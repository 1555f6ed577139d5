package rawsock

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listenRaw(t *testing.T) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := NewListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Close() })
	return rl
}

// acceptPair returns an accepted Socket and the client's end.
func acceptPair(t *testing.T, rl *Listener) (*Socket, net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", rl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := rl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := c.(*Socket)
	t.Cleanup(func() { s.Close() })
	return s, client
}

func TestSocketEchoesWithoutAttaching(t *testing.T) {
	rl := listenRaw(t)
	s, client := acceptPair(t, rl)
	if got, want := s.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	if got, want := s.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	client.Write([]byte("ping"))
	buf := make([]byte, 16)
	// The bytes may take a moment; a read finding nothing would attach.
	time.Sleep(20 * time.Millisecond)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if s.Attached() {
		t.Error("a read and a write that did not wait attached a Go socket")
	}
	n, err = io.ReadFull(client, buf[:4])
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}
}

func TestSocketWaitsThroughAnAttachedGoSocket(t *testing.T) {
	rl := listenRaw(t)
	s, client := acceptPair(t, rl)
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 16)
	_, err := s.Read(buf)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("Read with nothing sent = %v, want a timeout", err)
	}
	if !s.Attached() {
		t.Fatal("a read that waited attached no Go socket")
	}
	s.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		client.Write([]byte("late"))
	}()
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	// Detached, it reads raw again, and attaches again when it must wait.
	if !s.Detach() {
		t.Fatal("Detach found no Go socket")
	}
	client.Write([]byte("again"))
	time.Sleep(20 * time.Millisecond)
	n, err = s.Read(buf)
	if err != nil || string(buf[:n]) != "again" || s.Attached() {
		t.Fatalf("Read after Detach = %q, %v (attached %v)", buf[:n], err, s.Attached())
	}
	// A big write the socket cannot take at once goes on through a Go
	// socket, as the client reads.
	big := strings.Repeat("z", 8<<20)
	done := make(chan int)
	go func() {
		time.Sleep(100 * time.Millisecond) // the socket fills up first
		n, _ := io.Copy(io.Discard, io.LimitReader(bufio.NewReader(client), int64(len(big))))
		done <- int(n)
	}()
	if n, err := s.Write([]byte(big)); err != nil || n != len(big) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := <-done; got != len(big) {
		t.Fatalf("client got %d bytes", got)
	}
	if !s.Attached() {
		t.Error("a write that waited attached no Go socket")
	}
}

func TestSocketCloseAndEOF(t *testing.T) {
	rl := listenRaw(t)
	s, client := acceptPair(t, rl)
	client.Close()
	time.Sleep(20 * time.Millisecond)
	buf := make([]byte, 4)
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want EOF", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(buf); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Read after Close = %v", err)
	}
	if err := s.Close(); err == nil {
		t.Error("a second Close reported no error")
	}
}

func TestListenerCloseEndsAccept(t *testing.T) {
	rl := listenRaw(t)
	errc := make(chan error, 1)
	go func() {
		_, err := rl.Accept()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	rl.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Accept on a closed listener returned no error")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// Close wakes a waiting Accept, whose caller may close the listener too
// (the fast path's Shutdown does): the first Close is the one that
// succeeds.
func TestListenerCloseIsReportedOnce(t *testing.T) {
	rl := listenRaw(t)
	second := make(chan error, 1)
	go func() {
		rl.Accept()
		second <- rl.Close()
	}()
	time.Sleep(20 * time.Millisecond)
	if err := rl.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := <-second; err == nil {
		t.Error("second Close reported no error")
	}
}

// A deadline set in the past fails a read at once, bytes there or not,
// as net.TCPConn's does (net/http aborts a background read so); moved
// again, the bytes are read.
func TestSocketPastDeadlineFailsRawCalls(t *testing.T) {
	rl := listenRaw(t)
	s, client := acceptPair(t, rl)
	client.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	s.SetReadDeadline(time.Unix(1, 0))
	buf := make([]byte, 4)
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	s.SetWriteDeadline(time.Unix(1, 0))
	if _, err := s.Write(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the deadline = %v, want a timeout", err)
	}
	s.SetDeadline(time.Time{})
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("Read after the deadline moved = %q, %v", buf[:n], err)
	}
	if s.Attached() {
		t.Error("deadlines attached a Go socket")
	}
}

// On a wildcard listener the local address is the socket's, asked once;
// errors made while attaching (under the Socket's lock) name it too, and
// must not wait for that lock.
func TestSocketOnWildcardListener(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := NewListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	port := rl.Addr().(*net.TCPAddr).Port
	client, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := rl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := c.(*Socket)
	if got, want := s.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	s.Close()
	done := make(chan error, 1)
	go func() {
		_, err := s.attach()
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("attach after Close reported no error")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("attach after Close hangs")
	}
}

// The peer's address is kept as a value; RemoteAddr and RemoteAddrPort
// give what the client's own LocalAddr says, on IPv4 and IPv6.
func TestSocketPeerAddress(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Logf("%s: %v (no such loopback here)", host, err)
			continue
		}
		rl, err := NewListener(ln.(*net.TCPListener))
		if err != nil {
			t.Fatal(err)
		}
		client, err := net.Dial("tcp", rl.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := rl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s := c.(*Socket)
		want := client.LocalAddr().String()
		if got := s.RemoteAddr().String(); got != want {
			t.Errorf("%s: RemoteAddr %s, want %s", host, got, want)
		}
		if got := s.RemoteAddrPort().String(); got != want {
			t.Errorf("%s: RemoteAddrPort %s, want %s", host, got, want)
		}
		if got, want := s.LocalAddr().String(), rl.Addr().String(); got != want {
			t.Errorf("%s: LocalAddr %s, want %s", host, got, want)
		}
		s.Close()
		client.Close()
		rl.Close()
	}
}
