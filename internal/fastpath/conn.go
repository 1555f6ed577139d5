package fastpath

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"portico/internal/rawsock"
)

// link is what a connection keeps for its whole life, parked or not: the
// socket and the state of its deadlines. A parked connection (park.go) is
// its link alone; its conn, with the request and response state, serves
// other connections, and another one serves it when it wakes.
type link struct {
	nc net.Conn
	// remoteAddr is Request.RemoteAddr, formatted once.
	remoteAddr string

	// The read deadline set last, and whether it is the idle one: moving
	// an idle deadline by less than 1/64 of the timeout is skipped.
	rd instant
	wd instant // the write deadline set last

	// The idle wait (idle.go): the socket (nil: read through nc).
	raw syscall.RawConn

	// idle is, while the connection waits on the socket for its next
	// request and may be parked, when it started waiting (UnixNano);
	// 0 while busy, kicked once the parker asked it to park.
	idle atomic.Int64
	// lastWait is when the previous idle wait started (its idle value):
	// a connection busy enough does not park at once (parkAtOnce).
	lastWait int64
	// The parker's bookkeeping (park.go), under Listener.mu while parked.
	parkedAt instant // when it parked last
	fd       int32   // the socket's descriptor, once registered
	heapAt   int32   // index in the parker's deadline heap, -1 if not in it

	rdIdle     bool
	rawChecked bool
	polled     bool // registered with the parker's epoll instance
	// detached: fd is the parker's own duplicate, and Go's socket is
	// closed (detach.go); keepAlive is its SO_KEEPALIVE, to restore.
	detached  bool
	keepAlive bool
}

// instant is a time as UnixNano, 0 for none: the deadlines and times
// every connection's link holds, at a third of a time.Time's size (an
// idle connection is little more than its link).
type instant int64

func instantOf(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(t.UnixNano())
}

func (i instant) IsZero() bool { return i == 0 }

// Time is i as a time.Time, the zero one for none.
func (i instant) Time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i))
}

// conn is one connection served by the fast path, while it is not parked.
type conn struct {
	*link
	l    *Listener
	br   *bufio.Reader
	out  []byte  // pending output
	outp *[]byte // out's pool slot
	werr error   // the first write error: the connection is dead
	req  Request
	w    ResponseWriter

	// now is the engine's clock for the current request: read once when
	// its header block is complete (time.Now costs ~100ns on some VMs,
	// more than parsing a request). Date, the handler's start time and
	// the deadlines below derive from it; after a response that may have
	// taken long (a file, a big body) it is read again.
	now time.Time
	clk clock // what reads it (clock.go)
	// rawScratch holds RawHeader's copy of the header block when a field
	// is hidden; reused across requests.
	rawScratch []byte

	// The idle wait's netpoller callback (readReady), bound once, and
	// its state: with parkIfBlocked, a wait that would block sets blocked
	// instead of waiting.
	readFn        func(uintptr) bool
	readErr       error
	src           sourceReader // what br reads from
	parkIfBlocked bool
	blocked       bool
	resumed       bool // woken from parking: the wait goes on (mayPark)

	// Serving inside the idle wait (serveInline): what ended it when it
	// did not just go on; whether answers are being composed there, and
	// the socket (ClientGone must not wait for the read lock the wait
	// holds); since when the connection waits again there (its idle
	// value, 0 if it may not be parked); and whether it should park at
	// once instead (parkAtOnce said so there).
	inlineOut serveOutcome
	inline    bool
	inlineFD  int
	waitSince int64
	parkNow   bool
}

// outPool holds output buffers of connections.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, outFlushSize+4096); return &b }}

func (c *conn) getOut() {
	if c.outp != nil {
		return // kept: the wait served requests (serveInline)
	}
	c.outp = outPool.Get().(*[]byte)
	c.out = (*c.outp)[:0]
}

func (c *conn) putOut() {
	if c.outp == nil {
		return
	}
	*c.outp = c.out[:0]
	outPool.Put(c.outp)
	c.outp, c.out = nil, nil
}

// setWriteDeadline moves the write deadline to base+WriteTimeout, unless
// it would move by less than 1/64 of the timeout.
func (c *conn) setWriteDeadline(base time.Time) {
	t := c.l.opts.WriteTimeout
	if t <= 0 {
		return
	}
	if d := instantOf(base.Add(t)); time.Duration(d-c.wd) > t>>6 {
		_ = c.nc.SetWriteDeadline(d.Time())
		c.wd = d
	}
}

func (c *conn) setReadDeadline(d time.Time, idle bool) {
	if idle && c.rdIdle {
		if t, moved := c.l.opts.IdleTimeout, time.Duration(instantOf(d)-c.rd); moved <= t>>6 && moved >= 0 {
			return
		}
	}
	_ = c.nc.SetReadDeadline(d)
	c.rd, c.rdIdle = instantOf(d), idle
}

// write writes p to the socket now, bypassing the buffer.
func (c *conn) write(p []byte) (int, error) {
	c.setWriteDeadline(c.clk.now())
	return c.writeSocket(p)
}

// writeSocket writes p to the connection. Inside the netpoller callback
// that read the request (serveInline) the socket is at hand: what it
// takes at once is written there without the scheduler's system call
// bookkeeping (package rawsock), and only a rest it cannot take yet goes
// through the net.Conn, which waits for room under the write deadline.
func (c *conn) writeSocket(p []byte) (int, error) {
	if !c.inline {
		return c.nc.Write(p)
	}
	done, err := rawsock.Write(c.inlineFD, p)
	if err == nil {
		return done, nil
	}
	// EAGAIN, or an error the net.Conn reports just as well.
	n, err := c.nc.Write(p[done:])
	return done + n, err
}

// flush writes the pending output.
func (c *conn) flush() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.out) == 0 {
		return nil
	}
	c.setWriteDeadline(c.now)
	_, err := c.writeSocket(c.out)
	c.out = c.out[:0]
	if err != nil {
		c.werr = err
	}
	return err
}

// flushMore writes the pending output with MSG_MORE where it can (a TCP
// socket), so that a header goes out in the same segment as the start of
// the file sendfile sends next, as nginx's tcp_nopush does, without the
// two setsockopt calls of TCP_CORK.
func (c *conn) flushMore() error {
	if c.werr != nil || len(c.out) == 0 {
		return c.werr
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return c.flush()
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c.flush()
	}
	c.setWriteDeadline(c.now)
	p := c.out
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			n, e := syscall.SendmsgN(int(fd), p, nil, nil, sendMoreFlags)
			if e == syscall.EINTR {
				continue
			}
			if e == syscall.EAGAIN {
				return false // wait until writable, then go on
			}
			if e != nil {
				serr = e
				return true
			}
			p = p[n:]
		}
		return true
	})
	c.out = c.out[:0]
	if err == nil {
		err = serr
	}
	if err != nil {
		c.werr = err
	}
	return err
}

// serve is the goroutine of a new connection.
func (c *conn) serve() {
	c.getOut()
	c.remoteAddr = remoteAddrOf(c.nc)
	c.req.RemoteAddr = c.remoteAddr
	c.now = c.clk.now()
	c.run(true, false)
}

// run serves the connection's requests until it closes, is handed off or
// parks (then the conn serves others: a parked connection has no
// goroutine nor conn, and new ones resume it with woken set, park.go). first
// says no request was read yet, woken that the connection was parked and
// its next request's first bytes have arrived.
func (c *conn) run(first, woken bool) {
	l := c.l
	handedOff, parked := false, false
	defer func() {
		if parked {
			l.spareConn(c) // the link is the parker's now
			return
		}
		panicked := false
		if p := recover(); p != nil {
			if l.opts.OnPanic != nil {
				l.opts.OnPanic(p)
			}
			handedOff, panicked = false, true
		}
		if !handedOff {
			if !panicked {
				_ = c.flush() // answers already composed
			}
			c.nc.Close()
			c.releaseReader()
		}
		c.putOut()
		c.br = nil
		l.remove(c.link)
	}()
	opts := &l.opts
	size := opts.BufferSize
	served := !first // a request was answered on this connection
	for {
		waited := false
		if woken {
			// Parked, and the socket became readable (or so epoll says:
			// the same wait again parks it again if not). The deadline
			// stays the one set before parking.
			woken = false
			if err := c.awaitRequest(true); err != nil {
				parked = err == errParked
				return
			}
			waited = true
		} else if c.br == nil || c.br.Buffered() == 0 {
			// Between requests: flush, then wait for the next one. An
			// idle connection holds no buffer (idle.go), and after a
			// while no goroutine either (park.go).
			if !c.prepareWait(first) {
				return
			}
			if err := c.awaitRequest(served); err != nil {
				parked = err == errParked
				return
			}
			waited = true
		}
		if waited {
			c.getOut()
			// The wait may have served requests itself (serveInline).
			if out := c.inlineOut; out != servedNext {
				c.inlineOut = servedNext
				if out == servedHandOff {
					handedOff = c.handOff()
				}
				return
			}
			if c.br == nil || c.br.Buffered() == 0 {
				continue
			}
		}
		// Parse, reading more while the header block is incomplete.
		var n int
		deadlineSet := first && opts.ReadHeaderTimeout > 0
		first = false
		for {
			buf, _ := c.br.Peek(c.br.Buffered())
			c.req.reset()
			var res parseResult
			n, res = parseRequest(buf, &c.req)
			if res == parseOK {
				if n > opts.MaxHeaderBytes {
					handedOff = c.handOff()
					return
				}
				break
			}
			if res == parseHandOff && served && len(buf) < 4 {
				// net/http waits for 4 bytes before it reads a next
				// request, and closes silently if they never come.
				if c.flush() != nil {
					return
				}
				if _, err := c.br.Peek(4); err != nil {
					return
				}
				continue
			}
			if res == parseHandOff || len(buf) >= size || len(buf) >= opts.MaxHeaderBytes {
				handedOff = c.handOff()
				return
			}
			if !deadlineSet && opts.ReadHeaderTimeout > 0 {
				c.setReadDeadline(time.Now().Add(opts.ReadHeaderTimeout), false)
				deadlineSet = true
			}
			// Answers to earlier pipelined requests go out before
			// waiting for the rest of this one.
			if c.flush() != nil {
				return
			}
			if _, err := c.br.Peek(len(buf) + 1); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return // as net/http: a header timeout just closes
				}
				// EOF inside a request. net/http answers 400 Bad
				// Request, except after a first request when fewer
				// than 4 bytes came (its idle wait is Peek(4)); let it
				// see the same bytes and the same end.
				if served && len(buf) < 4 {
					return
				}
				handedOff = c.handOff()
				return
			}
		}
		if deadlineSet && opts.IdleTimeout <= 0 {
			c.setReadDeadline(time.Time{}, false)
		}
		// Serve.
		switch c.serveParsed(n) {
		case servedNext:
			served = true
		case servedHandOff:
			handedOff = c.handOff()
			return
		default:
			return
		}
	}
}

// serveOutcome says what comes after a request served by serveParsed.
type serveOutcome int

const (
	servedNext    serveOutcome = iota // answered; the connection goes on
	servedClose                       // the connection ends (its answer is flushed)
	servedHandOff                     // the handler declined: net/http takes the connection
)

// serveParsed serves the request parseRequest just read into c.req, whose
// header block is the first n buffered bytes.
func (c *conn) serveParsed(n int) serveOutcome {
	c.now = c.clk.now()
	req := &c.req
	req.Start = c.now
	c.w = ResponseWriter{c: c, head: req.Method == "HEAD", keepAlive: req.KeepAlive, proto10: req.ProtoMinor == 0}
	mark := len(c.out)
	if !c.l.handler.ServeFast(req, &c.w) {
		if c.w.started {
			// A handler broke the contract: the response is half
			// composed. Drop it and the connection.
			c.out = c.out[:mark]
			_ = c.flush()
			return servedClose
		}
		return servedHandOff
	}
	if !c.w.started {
		return servedClose // contract violation: no response at all
	}
	c.w.finish()
	c.w.defaults = nil
	if c.w.slow {
		c.now = c.clk.now()
	}
	_, _ = c.br.Discard(n)
	if c.werr != nil {
		return servedClose
	}
	if !c.w.keepAlive {
		_ = c.flush()
		return servedClose
	}
	if len(c.out) >= outFlushSize {
		if c.flush() != nil {
			return servedClose
		}
	}
	return servedNext
}

// prepareWait readies the connection to wait for its next request: the
// answers composed so far go out, the wait's read deadline is set, and
// the output buffer goes back to the pool. It returns false if the
// connection ends instead (a write failed, the listener is closing).
// first says no request was read yet.
func (c *conn) prepareWait(first bool) bool {
	if c.flush() != nil {
		return false
	}
	opts := &c.l.opts
	switch {
	case first && opts.ReadHeaderTimeout > 0:
		// As net/http: a new connection has ReadHeaderTimeout for its
		// first request, idle time included.
		c.setReadDeadline(c.now.Add(opts.ReadHeaderTimeout), false)
	case opts.IdleTimeout > 0:
		c.setReadDeadline(c.now.Add(opts.IdleTimeout), true)
	case opts.ReadHeaderTimeout > 0 && !c.rd.IsZero():
		c.setReadDeadline(time.Time{}, false)
	}
	if c.l.closing.Load() {
		return false
	}
	c.putOut()
	return true
}

// handOff flushes the responses written so far and passes the connection,
// with its unread buffered bytes, to net/http. It reports whether the
// connection now belongs to net/http.
func (c *conn) handOff() bool {
	if c.flush() != nil {
		return false
	}
	if c.l.closing.Load() {
		return false
	}
	// net/http sets its own deadlines; clear ours.
	_ = c.nc.SetReadDeadline(time.Time{})
	if !c.wd.IsZero() {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	hc := &handoffConn{Conn: c.nc, l: c.l, br: c.br}
	if c.br.Buffered() == 0 {
		c.br.Reset(nil)
		c.l.bufPool.Put(c.br)
		hc.br = nil
	}
	c.br = nil
	c.l.handOff(hc)
	return true
}
