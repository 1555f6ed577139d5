package rawsock

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a TCP connection whose Read and Write make their system calls
// through this package, waiting for readiness in Go's netpoller as
// net.TCPConn does, deadlines included. Everything else is the
// net.TCPConn's. For connections whose reader and writer are other
// packages (crypto/tls under net/http's HTTP/2 server), where the calls
// cannot be made in a callback of our own.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// Each direction keeps its call's state here, read and set by a
	// callback bound once, so that a call allocates nothing; the mutex
	// makes concurrent calls in one direction wait their turn, as
	// net.TCPConn's own lock does.
	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerr   error
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(uintptr) bool
}

// NewConn wraps tc.
func NewConn(tc *net.TCPConn) (*Conn, error) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &Conn{TCPConn: tc, rc: rc}
	c.readFn, c.writeFn = c.readStep, c.writeStep
	return c, nil
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(c.readFn)
	n, rerr := c.rn, c.rerr
	c.rbuf, c.rerr = nil, nil
	if err != nil {
		return 0, c.opError("read", err)
	}
	return n, rerr
}

func (c *Conn) readStep(fd uintptr) bool {
	n, err := Read(int(fd), c.rbuf)
	switch {
	case err == syscall.EAGAIN:
		return false // wait for readiness
	case err != nil:
		c.rerr = c.opError("read", os.NewSyscallError("read", err))
	case n == 0:
		c.rerr = io.EOF
	default:
		c.rn = n
	}
	return true
}

// Write writes all of p, waiting for room as long as the write deadline
// allows.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.rc.Write(c.writeFn)
	n, werr := c.wn, c.werr
	c.wbuf, c.werr = nil, nil
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, werr
}

func (c *Conn) writeStep(fd uintptr) bool {
	n, err := Write(int(fd), c.wbuf[c.wn:])
	c.wn += n
	if err == syscall.EAGAIN {
		return false // wait for room
	}
	if err != nil {
		c.werr = c.opError("write", os.NewSyscallError("write", err))
	}
	return true
}

// opError gives err the form net.TCPConn's Read and Write give theirs:
// a *net.OpError with op "read" or "write" (the raw calls say "raw-read"
// and "raw-write"), which net/http tells apart from other errors.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
