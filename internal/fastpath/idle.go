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

// Rewrapper is a ReadThrough wrapper that can take another connection in
// place of the one it wraps. A parked connection whose wrappers read
// through, the one right above the socket a Rewrapper, lets go of Go's
// socket while parked (detach.go): the wrapper wraps a stand-in meanwhile,
// and the new socket when the connection wakes; whatever else it holds
// (a connection-limit slot) stays.
type Rewrapper interface {
	ReadThrough
	Rewrap(net.Conn)
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
// after a request waits on the socket, without buffer. A wait the parker
// cuts short (it lasted long enough) parks the connection and returns
// errParked: the goroutine then ends, and another one takes over when
// the next request comes.
func (c *conn) awaitRequest(served bool) error {
	if served && !c.rawChecked {
		// Once per kept-alive connection: a connection that closes after
		// its first answer pays nothing for the idle wait.
		c.rawChecked = true
		c.raw = socketOf(c.nc)
	}
	if !served || c.raw == nil {
		c.takeReader()
		_, err := c.br.Peek(1)
		return err
	}
	if c.readFn == nil {
		c.readFn = c.readReady
	}
	c.releaseReader()
	since := c.mayPark()
	if since != 0 && c.parkAtOnce(since) {
		// Many connections: park as soon as the wait would block.
		c.readErr = nil
		c.parkIfBlocked = true
		err := c.raw.Read(c.readFn)
		blocked := c.blocked
		c.parkIfBlocked, c.blocked = false, false
		if err != nil {
			return err
		}
		if !blocked {
			return c.readErr // the next request is there
		}
		if c.park(true) {
			return errParked
		}
		if c.l.closing.Load() {
			return net.ErrClosed
		}
	}
	for {
		c.readErr = nil
		if since != 0 {
			c.idle.Store(since) // the parker may kick us from now on
		}
		err := c.raw.Read(c.readFn)
		if err == nil {
			err = c.readErr
		}
		if since == 0 || c.idle.CompareAndSwap(since, 0) {
			return err // bytes, the end, the deadline or the listener closing
		}
		// Kicked: the parker moved the read deadline to the past.
		if c.br != nil && c.br.Buffered() > 0 {
			// The next request came as the kick did: serve it, with the
			// deadline back (set after the kick's: the parker kicks
			// under l.mu).
			c.l.mu.Lock()
			c.l.mu.Unlock()
			_ = c.nc.SetReadDeadline(c.rd)
			return nil
		}
		c.releaseReader()
		if c.park(false) {
			return errParked
		}
		// Not parked (closing, or the system refused): restore the
		// deadline (then check closing: Close's comes after) and wait
		// on, as before.
		c.idle.Store(0)
		_ = c.nc.SetReadDeadline(c.rd)
		if c.l.closing.Load() {
			return net.ErrClosed
		}
		since = 0
	}
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
		if c.parkIfBlocked {
			c.blocked = true // awaitRequest parks instead of waiting
			return true
		}
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
