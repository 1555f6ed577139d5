package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"portico/internal/fastpath"
	"portico/internal/rawsock"
)

// upConn is one keep-alive connection of the fast path to an upstream,
// with its own read buffer (unread bytes are buf[r:w]) and a scratch
// buffer for the request it sends.
type upConn struct {
	nc     net.Conn
	buf    []byte
	r, w   int
	out    []byte
	idleAt time.Time
	reused bool
	// deadline is the deadline set last by SetDeadline; bodyTimeout the
	// read timeout of each read of the current body (0: none).
	deadline    time.Time
	bodyTimeout time.Duration
	// client is the response being relayed, polled while a body read
	// waits (fillBody).
	client *fastpath.ResponseWriter
	head   respHead
	// raw is the socket, for sendReused (nil: not a plain socket), and
	// sendFn/send its poller callback and state.
	raw    syscall.RawConn
	sendFn func(uintptr) bool
	send   sendState
}

const upBufSize = 16 << 10

// fill reads more from the upstream, compacting the buffer first and
// growing it while a response head does not fit (up to maxHeadBytes).
func (c *upConn) fill() (int, error) {
	if c.r > 0 {
		copy(c.buf, c.buf[c.r:c.w])
		c.w -= c.r
		c.r = 0
	}
	if c.w == len(c.buf) {
		if len(c.buf) > maxHeadBytes {
			return 0, errHeadTooLarge
		}
		nb := make([]byte, 2*len(c.buf))
		copy(nb, c.buf[:c.w])
		c.buf = nb
	}
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		err = nil
	}
	return n, err
}

// fillBody reads more of a body. The read deadline wakes it every
// clientPoll to see whether the client (if set) is still there; the body
// fails after bodyTimeout without progress (never when it is 0).
func (c *upConn) fillBody() error {
	c.deadline = time.Time{} // the read deadline is no longer the one set last
	now := time.Now()
	var hard time.Time
	if c.bodyTimeout > 0 {
		hard = now.Add(c.bodyTimeout)
	}
	for {
		d := now.Add(clientPoll)
		if !hard.IsZero() && d.After(hard) {
			d = hard
		}
		_ = c.nc.SetReadDeadline(d)
		_, err := c.fill()
		if err == nil {
			return nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
		now = time.Now()
		if !hard.IsZero() && !now.Before(hard) {
			return err
		}
		if c.client != nil && c.client.ClientGone() {
			return errClientGone
		}
	}
}

// connPool is the fast path's idle connections to one upstream: LIFO,
// bounded, each closed after idleTimeout unused.
type connPool struct {
	network, addr string
	maxIdle       int
	idleTimeout   time.Duration

	mu       sync.Mutex
	idle     []*upConn
	closed   bool
	sweeping bool
}

// get returns an idle connection, or nil.
func (p *connPool) get(now time.Time) *upConn {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(c.idleAt) < p.idleTimeout {
			p.mu.Unlock()
			// The caller makes sure nothing is waiting on it before it
			// sends (sendReused).
			c.reused = true
			return c
		}
		p.mu.Unlock()
		c.nc.Close()
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// put returns a connection whose last response was read completely. A
// connection with bytes buffered past that response is closed instead:
// they belong to no request (see get).
func (p *connPool) put(c *upConn, now time.Time) {
	if c.r != c.w {
		c.nc.Close()
		return
	}
	c.idleAt = now
	c.r, c.w = 0, 0
	if len(c.buf) > upBufSize {
		c.buf = make([]byte, upBufSize) // a huge head grew it: do not keep that
	}
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	p.idle = append(p.idle, c)
	sweep := !p.sweeping
	p.sweeping = true
	p.mu.Unlock()
	if sweep {
		time.AfterFunc(p.idleTimeout, p.sweep)
	}
}

// sweep closes the connections idle for longer than idleTimeout (the
// oldest are at the bottom of the stack).
func (p *connPool) sweep() {
	now := time.Now()
	var old []*upConn
	p.mu.Lock()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleAt) >= p.idleTimeout {
		i++
	}
	if i > 0 {
		old = append(old, p.idle[:i]...)
		n := copy(p.idle, p.idle[i:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
	more := len(p.idle) > 0 && !p.closed
	p.sweeping = more
	p.mu.Unlock()
	for _, c := range old {
		c.nc.Close()
	}
	if more {
		time.AfterFunc(p.idleTimeout/2, p.sweep)
	}
}

// dropIdleSince closes the idle connections unused since t or longer: the
// upstream closed one idle since t, so it likely closed those too.
func (p *connPool) dropIdleSince(t time.Time) {
	var old []*upConn
	p.mu.Lock()
	i := 0
	for i < len(p.idle) && !p.idle[i].idleAt.After(t) {
		i++
	}
	if i > 0 {
		old = append(old, p.idle[:i]...)
		n := copy(p.idle, p.idle[i:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
	p.mu.Unlock()
	for _, c := range old {
		c.nc.Close()
	}
}

// errNotQuiet: a pooled connection had bytes waiting (or was closed by
// the upstream) before a request was sent on it; it is dropped.
var errNotQuiet = errors.New("idle upstream connection not quiet")

// sendReused sends req on a reused connection and waits for the first
// bytes of the answer, in one netpoller wait with as few system calls as
// possible: inside the poller callback, first a non-blocking peek (every
// reuse makes sure nothing is waiting on the connection: bytes that
// arrived while it was idle are an upstream's framing bug, a body on a
// HEAD answer or more than its Content-Length sent in a second write,
// and would otherwise be read as the answer to the next client's
// request; EOF means the upstream closed it, better learnt now than by
// sending), then the write, then a wait for readability, without the
// read that would find nothing yet. The peek comes after the poller's
// readiness reset, so no wakeup is lost between it and the wait. A
// request the socket does not take whole is finished by a plain write.
// A timeout is returned as is: the caller's head loop handles it.
func (c *upConn) sendReused(req []byte) error {
	if c.sendFn == nil {
		c.sendFn = c.sendStep // bound once: no closure per request
	}
	c.send = sendState{rest: req}
	rerr := c.raw.Read(c.sendFn)
	st := &c.send
	err := st.err
	rest := st.rest
	*st = sendState{}
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		_, err = c.nc.Write(rest)
		return err
	}
	return rerr
}

// sendState is sendReused's progress, kept in the connection so that the
// poller callback needs no closure.
type sendState struct {
	rest []byte // what is left to write (a short write: nc.Write ends it)
	sent bool   // the peek and the write are done: now reading
	err  error
}

// sendStep is sendReused's netpoller callback.
func (c *upConn) sendStep(fd uintptr) bool {
	st := &c.send
	if !st.sent {
		st.sent = true
		if rawsock.Peek(int(fd)) != rawsock.Nothing {
			st.err = errNotQuiet
			return true
		}
		n, err := rawsock.Write(int(fd), st.rest)
		st.rest = st.rest[n:]
		if err == nil {
			return false // wait for the answer
		}
		if err != syscall.EAGAIN {
			st.err = os.NewSyscallError("write", err)
		}
		return true // the rest is written by nc.Write
	}
	n, err := rawsock.Read(int(fd), c.buf[c.w:])
	switch {
	case err == syscall.EAGAIN:
		return false // a spurious wakeup
	case err != nil:
		st.err = os.NewSyscallError("read", err)
	case n == 0:
		st.err = io.EOF
	default:
		c.w += n
	}
	return true
}

// quiet reports whether an idle connection has nothing to read and is not
// closed: a non-blocking peek.
func quiet(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ok = false
	err = rc.Read(func(fd uintptr) bool {
		ok = rawsock.Peek(int(fd)) == rawsock.Nothing
		return true
	})
	return ok && err == nil
}

// closeIdle closes the idle connections; with final, the pool keeps no
// more.
func (p *connPool) closeIdle(final bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if final {
		p.closed = true
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// dial opens a new connection.
func (p *connPool) dial(d *net.Dialer) (*upConn, error) {
	nc, err := d.DialContext(context.Background(), p.network, p.addr)
	if err != nil {
		return nil, err
	}
	c := &upConn{nc: nc, buf: make([]byte, upBufSize)}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c, nil
}

// errServerClosedIdle marks a reused connection the upstream had closed
// before our request reached it: the request is sent again on another
// connection to the same upstream, as Go's transport does.
var errServerClosedIdle = errors.New("upstream closed an idle connection")

// isClosedIdle reports whether err, on a reused connection before any
// response byte, means the upstream had closed it (not a timeout).
func isClosedIdle(err error) bool {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) // reset, broken pipe
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
