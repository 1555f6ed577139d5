package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// errPoolClosed is returned by get once the pool is closed.
var errPoolClosed = errors.New("fastcgi: handler closed")

// errNoSlot is returned by get when no connection freed up in time.
var errNoSlot = errors.New("fastcgi: no free connection to the responder")

// conn is one connection to the responder.
type conn struct {
	nc net.Conn
	// br reads the connection through tr, which moves the read deadline.
	br *bufio.Reader
	tc *timedConn
	// raw is the socket itself, for the liveness peek; nil if the
	// connection has none.
	raw syscall.RawConn
	// reused tells whether the connection served a request before, so
	// a failure before any answer may be retried on a fresh one.
	reused bool
	// peek is the liveness check's function for raw.Read, made once per
	// connection (a closure per check would allocate); it leaves its
	// answer in peekGood.
	peek     func(fd uintptr) bool
	peekBuf  [1]byte
	peekGood bool
}

// pool holds the connections to one responder: at most max of them, busy
// and idle together. A connection goes back to the idle list only when its
// last response ended cleanly (see release); idle ones are taken newest
// first, so the ones left idle longest are those php-fpm may drop.
type pool struct {
	network, address string
	connectTimeout   time.Duration
	readTimeout      time.Duration
	dialer           net.Dialer

	// dials counts the connections opened.
	dials atomic.Int64
	// slots holds one token per connection that may be busy.
	slots chan struct{}

	mu     sync.Mutex
	idle   []*conn
	closed bool
}

func newPool(network, address string, max int, connectTimeout, readTimeout time.Duration) *pool {
	return &pool{
		network:        network,
		address:        address,
		connectTimeout: connectTimeout,
		readTimeout:    readTimeout,
		slots:          make(chan struct{}, max),
	}
}

// get returns a connection for one request: an idle one that is still
// sound, else a new one. It waits for a free slot up to connectTimeout.
// The caller must hand it back with release.
func (p *pool) get(ctx context.Context) (*conn, error) {
	deadline := time.Now().Add(p.connectTimeout)
	select {
	case p.slots <- struct{}{}:
	default:
		t := time.NewTimer(p.connectTimeout)
		select {
		case p.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			return nil, errNoSlot
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	for {
		c, closed := p.popIdle()
		if closed {
			p.freeSlot()
			return nil, errPoolClosed
		}
		if c == nil {
			break
		}
		if sound(c) {
			c.reused = true
			return c, nil
		}
		c.nc.Close()
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	nc, err := p.dialer.DialContext(dctx, p.network, p.address)
	cancel()
	p.dials.Add(1)
	if err != nil {
		p.freeSlot()
		return nil, fmt.Errorf("connect to %s: %w", p.address, err)
	}
	tc := &timedConn{nc: nc, timeout: p.readTimeout}
	c := &conn{nc: nc, br: bufio.NewReaderSize(tc, 16<<10), tc: tc}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
		c.peek = c.peekFD
	}
	return c, nil
}

func (p *pool) popIdle() (*conn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, true
	}
	n := len(p.idle)
	if n == 0 {
		return nil, false
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return c, false
}

// release hands a connection back. reusable must be true only when the
// response ended cleanly: FCGI_END_REQUEST read, the request's stdin fully
// sent, and no byte left unread (a byte left over would be read as the
// start of the next client's response: issue 8's stray bytes).
func (p *pool) release(c *conn, reusable bool) {
	if reusable && c.br.Buffered() == 0 {
		p.mu.Lock()
		if !p.closed {
			p.idle = append(p.idle, c)
			p.mu.Unlock()
			p.freeSlot()
			return
		}
		p.mu.Unlock()
	}
	c.nc.Close()
	p.freeSlot()
}

func (p *pool) freeSlot() { <-p.slots }

// close closes the idle connections; busy ones are closed on release.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// idleCount is the number of idle connections (for tests).
func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// sound reports whether an idle connection may carry a request: the peer
// has not closed it and has sent nothing since the last response ended.
// It peeks without blocking (MSG_PEEK|MSG_DONTWAIT): EAGAIN is the only
// good answer; a byte (stray output) or EOF (php-fpm dropped it, a child
// recycled) means it must go.
func sound(c *conn) bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	// A read deadline that passed while the connection was idle would
	// fail the peek itself.
	if d := c.tc.readDeadline; !d.IsZero() && time.Now().After(d) {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.tc.readDeadline = time.Time{}
	}
	c.peekGood = false
	err := c.raw.Read(c.peek)
	return err == nil && c.peekGood
}

// peekFD peeks at fd without blocking (MSG_PEEK|MSG_DONTWAIT): EAGAIN is
// the only good answer.
func (c *conn) peekFD(fd uintptr) bool {
	// recvfrom(2) without a source address: syscall.Recvfrom would try
	// to decode one, which fails on a connected unix socket.
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	c.peekGood = n == ^uintptr(0) && (errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK)
	return true // never wait for readiness
}

// timedConn reads a connection with a deadline that moves with each
// read (php-fpm quiet for longer than timeout is cut), until kill.
//
// The deadlines move only when they gain more than 1/64 of their span
// (as the proxy's fast path does): most requests then cost no timer
// update, and a responder is cut after at least 63/64 of the timeout.
type timedConn struct {
	nc      net.Conn
	timeout time.Duration
	// watch, while set (a request of the fast path, which has no request
	// context), is asked every clientPoll while a read waits whether the
	// client is still there; a client gone kills the connection.
	watch clientWatch

	mu     sync.Mutex
	killed bool
	// readDeadline and writeDeadline are the deadlines set last.
	readDeadline, writeDeadline time.Time
}

// clientWatch tells whether the client of the request being served has
// gone (*fastpath.ResponseWriter).
type clientWatch interface{ ClientGone() bool }

// clientPoll is how often a read that waits on the responder looks
// whether the fast path's client is still there.
const clientPoll = time.Second

func (tc *timedConn) Read(p []byte) (int, error) {
	var start time.Time
	for {
		tc.mu.Lock()
		if tc.killed {
			tc.mu.Unlock()
			return 0, errCanceled
		}
		span := tc.timeout
		if tc.watch != nil && (span <= 0 || span > clientPoll) {
			span = clientPoll
		}
		if span > 0 {
			now := time.Now()
			if start.IsZero() {
				start = now
			}
			d := now.Add(span)
			if tc.timeout > 0 && d.After(start.Add(tc.timeout)) {
				d = start.Add(tc.timeout)
			}
			if d.Before(tc.readDeadline) || d.Sub(tc.readDeadline) > span>>6 {
				_ = tc.nc.SetReadDeadline(d)
				tc.readDeadline = d
			}
		}
		tc.mu.Unlock()
		n, err := tc.nc.Read(p)
		if err == nil {
			return n, nil
		}
		if n == 0 && tc.watch != nil && errors.Is(err, os.ErrDeadlineExceeded) && !tc.isKilled() {
			if tc.watch.ClientGone() {
				tc.kill()
				return 0, errCanceled
			}
			if tc.timeout <= 0 || time.Since(start) < tc.timeout {
				continue
			}
		}
		return n, tc.why(err)
	}
}

func (tc *timedConn) isKilled() bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.killed
}

// why turns the error of a read or write cut by kill into errCanceled,
// so that it is not taken for the responder's timeout or failure.
func (tc *timedConn) why(err error) error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.killed {
		return errCanceled
	}
	return err
}

// kill makes every read and write of the connection, blocked or to come,
// fail at once (the client went away, or the response is abandoned). A
// killed connection is never reused.
func (tc *timedConn) kill() {
	tc.mu.Lock()
	tc.killed = true
	_ = tc.nc.SetDeadline(time.Unix(1, 0))
	tc.mu.Unlock()
}

// write writes p with a deadline of timeout, unless the connection was
// killed.
func (tc *timedConn) write(p []byte) (int, error) {
	tc.mu.Lock()
	if tc.killed {
		tc.mu.Unlock()
		return 0, errCanceled
	}
	if tc.timeout > 0 {
		d := time.Now().Add(tc.timeout)
		if d.Sub(tc.writeDeadline) > tc.timeout>>6 {
			_ = tc.nc.SetWriteDeadline(d)
			tc.writeDeadline = d
		}
	}
	tc.mu.Unlock()
	n, err := tc.nc.Write(p)
	if err != nil {
		err = tc.why(err)
	}
	return n, err
}
