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

	"portico/internal/rawsock"
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
// once the connection has served a request. Its Write must be the wrapped
// connection's: answers composed inside the idle wait are written on the
// socket underneath. A wrapper that must see every byte (a byte counter)
// must not implement it; one that buffers only at first (a PROXY-protocol
// reader) adds a ReadsThroughNow() bool method, false until then.
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
	switch c := underReadThrough(nc).(type) {
	case nil:
		return nil
	case *net.TCPConn:
		rc, err := c.SyscallConn()
		if err != nil {
			return nil
		}
		return rc
	default:
		return acceptedRaw(c)
	}
}

// underReadThrough returns the connection under nc's read-through
// wrappers (nc itself if it has none), or nil past 8 of them or under a
// wrapper that does not read through yet.
func underReadThrough(nc net.Conn) net.Conn {
	for i := 0; i < 8; i++ {
		rt, ok := nc.(ReadThrough)
		if !ok {
			return nc
		}
		if !readsThroughNow(rt) {
			return nil
		}
		nc = rt.Unwrap()
	}
	return nil
}

// readsThroughNow reports whether a ReadThrough wrapper reads through at
// this point of its connection: one may buffer at first (a PROXY-protocol
// reader, until the bytes after the header are taken) and say so with a
// ReadsThroughNow method.
func readsThroughNow(rt ReadThrough) bool {
	w, ok := rt.(interface{ ReadsThroughNow() bool })
	return !ok || w.ReadsThroughNow()
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
	parkNow := c.parkNow
	c.parkNow = false
	if since != 0 && (parkNow || c.parkAtOnce(since)) {
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
		c.waitSince = since
		if since != 0 {
			c.idle.Store(since) // the parker may kick us from now on
		}
		err := c.raw.Read(c.readFn)
		if err == nil {
			err = c.readErr
		}
		// readReady took the idle mark back when it read, and set it
		// again if it waits on after serving requests (serveInline).
		since = c.waitSince
		c.waitSince = 0
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
			_ = c.nc.SetReadDeadline(c.rd.Time())
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
		_ = c.nc.SetReadDeadline(c.rd.Time())
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
	since := c.waitSince
	if since != 0 {
		if !c.idle.CompareAndSwap(since, 0) {
			return true // kicked: awaitRequest parks the connection
		}
		c.waitSince = 0
	}
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
		if since != 0 {
			c.waitSince = since
			c.idle.Store(since)
		}
		return false
	}
	c.readErr = err
	if err != nil || c.parkIfBlocked {
		return true
	}
	c.inline, c.inlineFD = true, int(fd)
	waits := c.serveInline()
	c.inline = false
	return !waits
}

// serveInline answers, inside readReady, the requests its read buffered,
// and, when that read drained the socket and the connection stays open,
// readies the next wait there too: readReady then returns false, and the
// netpoller calls it again when the next request arrives. That skips the
// read(2) that would find nothing, one of about three system calls of a
// kept-alive request. It is safe only inside one RawConn.Read: its entry
// forgets readiness the netpoller saw before (internal/poll's
// prepareRead), while within it a request arriving after the draining
// read always wakes the wait (epoll is edge-triggered, and the netpoller
// keeps an edge no one waited for). nginx skips the same read by the same
// reasoning (a short read on an edge-triggered socket clears its ready
// flag).
// It returns false to go back to run, which then handles what is left
// (an incomplete request, a handoff, the end: c.inlineOut) or waits with a
// read first.
func (c *conn) serveInline() bool {
	c.getOut()
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		c.req.reset()
		n, res := parseRequest(buf, &c.req)
		if res != parseOK || n > c.l.opts.MaxHeaderBytes {
			return false // run parses it again, reads the rest or hands off
		}
		if c.l.servedInside != nil {
			c.l.servedInside()
		}
		if out := c.serveParsed(n); out != servedNext {
			c.inlineOut = out
			return false
		}
		if c.br.Buffered() == 0 {
			break
		}
	}
	if !c.src.drained {
		return false // more may be in the socket: run waits, reading first
	}
	if !c.prepareWait(false) {
		c.inlineOut = servedClose
		return false
	}
	c.releaseReader()
	if since := c.mayPark(); since != 0 {
		if c.parkAtOnce(since) {
			c.parkNow = true // run's wait parks it
			return false
		}
		c.waitSince = since
		c.idle.Store(since)
	}
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
	// drained says the last read(2) on fd returned less than it could
	// take: the socket had nothing more then.
	drained bool
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.fd < 0 {
		return s.nc.Read(p)
	}
	n, err := rawsock.Read(s.fd, p)
	switch {
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		return 0, io.EOF
	}
	s.drained = n < len(p)
	return n, nil
}

// remoteAddrOf is Request.RemoteAddr for nc. A socket that keeps its
// peer's address as a value (rawsock.Socket) is asked for that: no
// net.Addr made to be thrown away, on every new connection.
func remoteAddrOf(nc net.Conn) string {
	if s, ok := nc.(interface{ RemoteAddrPort() netip.AddrPort }); ok {
		if a := s.RemoteAddrPort(); a.IsValid() {
			var buf [len("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%zone]:65535")]byte
			return string(a.AppendTo(buf[:0]))
		}
	}
	return remoteAddrString(nc.RemoteAddr())
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
