package fastpath

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
)

// An idle connection, waiting for its next request, holds no buffer: it
// gives its read buffer back to the pool and waits on the socket's
// readiness through the netpoller, and takes a buffer again once bytes
// arrived (readReady).
// nginx and lighttpd do the same (an idle connection there costs a few
// hundred bytes, here a goroutine's stack and the conn).

// ReadThrough is implemented by a connection wrapper whose Read adds no
// buffering of its own (it checks or reports on the first reads, then
// reads the wrapped connection): the engine may then wait on, and read
// from, the socket underneath instead of reading through the wrapper,
// once the connection has served a request. A wrapper that must see
// every byte (a byte counter) must not implement it.
type ReadThrough interface {
	net.Conn
	Unwrap() net.Conn
	ReadThrough()
}

// socketOf returns the raw socket under nc when every wrapper above it
// reads through, else nil (a wrapper that may buffer bytes of its own,
// such as a PROXY-protocol reader: then the engine reads through it and
// keeps its buffer while idle).
func socketOf(nc net.Conn) syscall.RawConn {
	for i := 0; i < 8; i++ {
		switch c := nc.(type) {
		case *net.TCPConn:
			rc, err := c.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case ReadThrough:
			nc = c.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// takeReader gives the connection its read buffer.
func (c *conn) takeReader() {
	if c.br == nil {
		c.br = c.l.bufPool.Get().(*bufio.Reader)
		c.br.Reset(&c.src)
	}
}

// releaseReader gives the read buffer back to the pool; it must be empty.
func (c *conn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		c.l.bufPool.Put(c.br)
		c.br = nil
	}
}

// awaitRequest waits until the next request's first bytes arrive (or the
// connection ends, or the read deadline passes), and leaves them in the
// read buffer. The first request of a connection is read straight into
// a buffer (it is on its way: a client sends it as it connects), as is
// every request of a connection without a raw socket; the idle wait
// after a request waits on the socket, without buffer.
func (c *conn) awaitRequest(served bool) error {
	if served && c.readFn == nil && !c.rawChecked {
		// Once per kept-alive connection: a connection that closes after
		// its first answer pays nothing for the idle wait.
		c.rawChecked = true
		if c.raw = socketOf(c.nc); c.raw != nil {
			c.readFn = c.readReady
		}
	}
	if !served || c.raw == nil {
		c.takeReader()
		_, err := c.br.Peek(1)
		return err
	}
	c.releaseReader()
	c.readErr = nil
	if err := c.raw.Read(c.readFn); err != nil {
		return err // the deadline, or the listener closing
	}
	return c.readErr
}

// readReady is the netpoller callback of awaitRequest. It reads whatever
// the socket has into a buffer taken from the pool, with one read(2): if
// the socket has nothing yet, the buffer goes back to the pool and the
// goroutine waits for readiness without it. A request already in the
// socket thus costs one system call, as a plain read would, and an idle
// wait two (the read that finds nothing, the read after the wakeup),
// also as a plain read would; a buffer is held only while bytes are.
func (c *conn) readReady(fd uintptr) bool {
	c.takeReader()
	c.src.fd = int(fd)
	_, err := c.br.Peek(1)
	c.src.fd = -1
	if err == errWouldBlock {
		c.releaseReader()
		return false
	}
	c.readErr = err
	return true
}

// errWouldBlock is sourceReader's answer when the socket has nothing to
// read yet.
var errWouldBlock = errors.New("fastpath: read would block")

// sourceReader is what the read buffer reads from: the connection, or,
// inside readReady, the raw socket with one non-blocking read(2).
type sourceReader struct {
	nc net.Conn
	fd int // >= 0 only inside readReady
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.fd < 0 {
		return s.nc.Read(p)
	}
	for {
		n, err := syscall.Read(s.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// remoteAddrString is a.String() (net/http's Request.RemoteAddr), in one
// allocation for an IPv4 peer instead of three.
func remoteAddrString(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.Zone != "" {
		return a.String()
	}
	ip4 := ta.IP.To4()
	if ip4 == nil {
		return a.String()
	}
	var buf [len("255.255.255.255:65535")]byte
	b := netip.AddrFrom4([4]byte(ip4)).AppendTo(buf[:0])
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(ta.Port), 10)
	return string(b)
}
