// Package rawsock makes the socket system calls of the hot request paths
// (a read, a write, a peek on a non-blocking socket, from inside a
// netpoller callback) without telling the Go scheduler.
//
// Why: a system call made the usual way (syscall.Read, net.Conn.Write)
// marks the goroutine's P as in a system call. The runtime's monitor
// thread (sysmon) wakes every 20 us to 10 ms and takes away a P that it
// finds in the same system call twice in a row, handing it to another
// thread. On a server whose threads share one core (pinned, or a small
// container), the monitor's own wakeups interrupt those calls, so it
// keeps finding them and handing the P over: measured on the reverse
// proxy pinned to one core, the monitor used 7.6% of the core
// (24,000 wakeups in 5 s) and two threads took turns serving, with 18,000
// involuntary switches; with these calls, 0.2% (149 wakeups) and one
// thread, for about 10% less CPU per request.
//
// A call made here cannot block: every caller passes a descriptor in
// non-blocking mode (Go's sockets always are), so the P is never held for
// longer than the copy of one socket buffer.
package rawsock

import (
	"io"
	"syscall"
)

// Read reads from the non-blocking socket fd into p, retrying on EINTR:
// n > 0 bytes, (0, nil) at end of stream, or an error (syscall.EAGAIN
// when nothing is there yet).
func Read(fd int, p []byte) (int, error) {
	for {
		n, err := read(fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// Write writes to the non-blocking socket fd as much of p as it takes
// now, retrying on EINTR: n is what was written; err is nil when all of p
// was, syscall.EAGAIN when the socket buffer is full, or another error.
func Write(fd int, p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := write(fd, p[done:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n <= 0 {
			return done, io.ErrShortWrite // a socket never does this; no endless loop if one did
		}
		done += n
	}
	return done, nil
}

// Peeked is what a non-blocking peek found on a socket.
type Peeked int

const (
	Nothing Peeked = iota // open, nothing to read yet
	Bytes                 // bytes are waiting
	Closed                // the peer closed or reset it, or the socket failed
)

// Peek looks at the socket fd without blocking or consuming input.
func Peek(fd int) Peeked {
	for {
		n, err := peek(fd)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return Nothing
		case err != nil || n == 0:
			return Closed
		}
		return Bytes
	}
}
