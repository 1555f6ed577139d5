package fastpath

import (
	"bufio"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// An idle connection, waiting for its next request, holds no buffer: it
// gives its read buffer back to the pool and waits on the socket's
// readiness through the netpoller, with a 1-byte MSG_PEEK into the conn
// (no read buffer needed), and takes a buffer again once bytes arrived.
// nginx and lighttpd do the same (an idle connection there costs a few
// hundred bytes, here a goroutine's stack and the conn).

// ReadThrough is implemented by a connection wrapper whose Read adds no
// buffering of its own (it counts, checks or reports, then reads the
// wrapped connection): the engine may then wait on the socket underneath
// instead of reading through the wrapper.
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
		c.br.Reset(c.nc)
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
	if c.peekFn == nil {
		c.peekFn = c.peekReadable
	}
	c.releaseReader()
	since := c.mayPark()
	if since != 0 && c.l.crowded() {
		// Many connections: park as soon as the wait would block.
		c.woken = false
		c.parkIfBlocked = true
		err := c.raw.Read(c.peekFn)
		blocked := c.blocked
		c.parkIfBlocked, c.blocked = false, false
		if err != nil {
			return err
		}
		if !blocked {
			c.takeReader() // the next request is there
			_, err = c.br.Peek(1)
			return err
		}
		if c.park() {
			return errParked
		}
		if c.l.closing.Load() {
			return net.ErrClosed
		}
	}
	for {
		c.woken = false
		if since != 0 {
			c.idle.Store(since) // the parker may kick us from now on
		}
		err := c.raw.Read(c.peekFn)
		if err == nil {
			// Readable, or so the netpoller says: a wakeup may be stale
			// (an edge of earlier bytes, delivered late), and then the
			// buffered read waits, buffer in hand, but still kickable.
			c.takeReader()
			_, err = c.br.Peek(1)
		}
		if since == 0 || c.idle.CompareAndSwap(since, 0) {
			return err
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
		if c.park() {
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

// peekReadable is the netpoller callback of awaitRequest: it reports
// whether the socket has something to read (bytes, end of stream or an
// error, which the buffered read then sees), asking the kernel only the
// first time. Woken by the poller, it says yes without asking: a
// spurious wakeup only means the buffered read waits, buffer in hand.
func (c *conn) peekReadable(fd uintptr) bool {
	if c.woken {
		return true
	}
	c.woken = true
	for {
		_, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN && c.parkIfBlocked {
			c.blocked = true // awaitRequest parks instead of waiting
			return true
		}
		return err != syscall.EAGAIN
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
