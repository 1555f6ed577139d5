// Package fastpath is a lean HTTP/1.x connection engine that sits between
// a TCP listener and net/http. It answers the hottest requests itself
// (GET and HEAD of plain data, such as a cached static file) and hands
// every connection that sends anything else to net/http for the rest of
// its life.
//
//	ln, _ := net.Listen("tcp", addr)
//	fl := fastpath.Listen(ln, handler, fastpath.Options{...})
//	http.Serve(fl, mux) // sees only the connections fastpath handed off
//
// For each accepted connection a goroutine reads requests into a pooled
// buffer and parses them without allocating (parseRequest). Between
// requests a kept-alive connection holds neither its read nor its output
// buffer: it waits on the socket through the netpoller and takes a buffer
// back when bytes arrive (idle.go); idle for a while (or at once when
// many connections are open), it is parked, on Linux: its goroutine ends
// and the listener's epoll instance wakes a new one for its next request
// (park.go). A request the
// engine may answer (GET or HEAD, HTTP/1.0 or 1.1, no body, no Expect or
// Upgrade, syntactically clean, headers within the buffer) goes to
// Handler.ServeFast. If that returns true the response was written by the
// engine; if it returns false, or the request is anything else, the
// connection is handed off: Accept on the returned Listener yields it, and
// its first reads return the bytes already buffered, the whole unconsumed
// request included, so net/http parses it from its first byte.
//
// The engine applies the limits net/http would: ReadHeaderTimeout while a
// request's header block is incomplete, IdleTimeout between requests and
// MaxHeaderBytes (a larger header block is handed off, and net/http
// answers 431). Keep-alive follows net/http's rules; pipelined requests
// are answered in order and output is flushed when no further request is
// buffered.
//
// TLS connections should not go through the fast path (wrap the listener
// after the fast path, or not at all).
package fastpath

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Handler answers the requests of the fast path.
type Handler interface {
	// ServeFast answers req with w and returns true, or returns false
	// without calling any method of w, and the connection is handed to
	// net/http, which then serves req. It runs on the connection's
	// goroutine; the strings of req are valid only until it returns.
	ServeFast(req *Request, w *ResponseWriter) bool
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(*Request, *ResponseWriter) bool

// ServeFast calls f(req, w).
func (f HandlerFunc) ServeFast(req *Request, w *ResponseWriter) bool { return f(req, w) }

// Options bound the fast path. Zero durations mean no limit, as in
// http.Server.
type Options struct {
	// ReadHeaderTimeout bounds reading one request's header block,
	// measured from its first byte (http.Server.ReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection, and for the first one (http.Server.IdleTimeout).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the client: the deadline moves
	// forward before every write (and every 256 KiB of a file), so a
	// client that stops reading is cut, while a long download is not.
	// It is portico's write_timeout, which net/http's WriteTimeout (a
	// limit on the whole response) is not.
	WriteTimeout time.Duration
	// MaxHeaderBytes caps the request line and header block the fast path
	// reads; a larger request is handed off (and net/http applies its own
	// limit). At most BufferSize.
	MaxHeaderBytes int
	// BufferSize is the size of each connection's read buffer; default
	// 4096. Requests that do not fit are handed off.
	BufferSize int
	// OnPanic, if set, is called with the value of a panic in a Handler;
	// the connection is then closed.
	OnPanic func(v any)
	// ParkIdleAfter is how long a kept-alive connection waits for its
	// next request on its own goroutine before it is parked (Linux: the
	// goroutine ends, and a new one serves the connection once its next
	// request arrives, park.go). Default 1s (a connection is parked after
	// 1 to 2s idle); negative: never park.
	ParkIdleAfter time.Duration
	// ParkAtOnceAbove: with more fast-path connections open than this, a
	// kept-alive connection parks as soon as its wait for the next
	// request would block, without waiting ParkIdleAfter (many
	// connections: their memory matters more than the microseconds a
	// park and wake-up cost), unless its previous request came less than
	// ParkIdleAfter/2 before (a busy client). Default 64; negative:
	// never at once.
	ParkAtOnceAbove int
	// ParkReleaseWave: once this many connections parked since the last
	// time, and their wave calmed, the parker returns the memory that
	// served them to the system (release.go), at most once per 10s.
	// Default 256; negative: never.
	ParkReleaseWave int
	// ParkDetachAfter: a connection parked this long lets go of Go's
	// socket too (detach.go): less memory while it stays idle, about 20
	// more system calls when it wakes. A connection that comes back
	// within seconds (a browser's next page) keeps its socket and wakes
	// cheaply. Default 10s; negative: never.
	ParkDetachAfter time.Duration

	// For tests: what a release does, and the least time between two.
	releaseFunc  func()
	releaseEvery time.Duration
}

const (
	defaultBufferSize    = 4096
	defaultParkIdleAfter = time.Second
	defaultParkAtOnce    = 64
	defaultReleaseWave   = 256
	defaultDetachAfter   = 10 * time.Second
	// outFlushSize is the output buffered before a flush is forced.
	outFlushSize = 16 << 10
)

// Listener is the net.Listener of the connections handed to net/http.
type Listener struct {
	inner   net.Listener
	handler Handler
	opts    Options
	bufPool sync.Pool

	handoff   chan net.Conn
	jobs      chan job // to the workers waiting for a connection (worker.go)
	done      chan struct{}
	closeOnce sync.Once
	acceptErr error // set before done is closed when the inner listener fails

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*link]struct{} // the fast path's connections, parked ones included
	nconns  atomic.Int32       // len(conns), read without the lock
	spare   []*conn            // conns of parked connections, for others (connFor)
	wg      sync.WaitGroup     // counts conns
	parker  *parker            // nil: idle connections are never parked

	// servedInside, when set (tests), is called for each request
	// answered inside the idle wait (serveInline).
	servedInside func()
}

var _ net.Listener = (*Listener)(nil)

// Listen starts accepting connections on ln and serving them with h. The
// returned Listener yields the connections to be served by net/http;
// closing it closes ln and ends the fast path's idle connections (busy
// ones finish their response first). ln is owned by the Listener from now
// on.
func Listen(ln net.Listener, h Handler, opts Options) *Listener {
	l := newListener(ln, h, opts)
	if l.opts.ParkIdleAfter > 0 {
		l.parker = newParker(l) // nil where parking is not supported
	}
	go l.acceptLoop()
	return l
}

func newListener(ln net.Listener, h Handler, opts Options) *Listener {
	if opts.BufferSize <= 0 {
		opts.BufferSize = defaultBufferSize
	}
	if opts.MaxHeaderBytes <= 0 || opts.MaxHeaderBytes > opts.BufferSize {
		opts.MaxHeaderBytes = opts.BufferSize
	}
	if opts.ParkIdleAfter == 0 {
		opts.ParkIdleAfter = defaultParkIdleAfter
	}
	if opts.ParkAtOnceAbove == 0 {
		opts.ParkAtOnceAbove = defaultParkAtOnce
	}
	if opts.ParkReleaseWave == 0 {
		opts.ParkReleaseWave = defaultReleaseWave
	}
	if opts.ParkDetachAfter == 0 {
		opts.ParkDetachAfter = defaultDetachAfter
	}
	l := &Listener{
		inner:   ln,
		handler: h,
		opts:    opts,
		handoff: make(chan net.Conn),
		jobs:    make(chan job),
		done:    make(chan struct{}),
		conns:   map[*link]struct{}{},
	}
	size := opts.BufferSize
	l.bufPool.New = func() any { return bufio.NewReaderSize(nil, size) }
	return l
}

func (l *Listener) acceptLoop() {
	var delay time.Duration
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// As net/http: back off on EMFILE and the like.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.fail(err)
			return
		}
		delay = 0
		lk := &link{nc: nc, heapAt: -1}
		l.mu.Lock()
		if l.closing.Load() {
			l.mu.Unlock()
			nc.Close()
			continue
		}
		l.conns[lk] = struct{}{}
		l.nconns.Store(int32(len(l.conns)))
		l.wg.Add(1)
		c := l.connFor(lk)
		l.mu.Unlock()
		l.dispatch(job{c: c})
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// fail records the inner listener's error and stops Accept.
func (l *Listener) fail(err error) {
	l.closeOnce.Do(func() {
		l.acceptErr = err
		close(l.done)
	})
}

// Accept returns the next connection handed off to net/http.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case <-l.done:
		// A handoff racing with Close still reaches its taker.
		select {
		case c := <-l.handoff:
			return c, nil
		default:
		}
		if l.acceptErr != nil {
			return nil, l.acceptErr
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes the inner listener and asks the fast
// path's connections to close: idle ones at once, busy ones after their
// current response. It does not wait; see Shutdown.
func (l *Listener) Close() error {
	err := l.inner.Close()
	l.closeOnce.Do(func() { close(l.done) })
	l.closing.Store(true)
	l.mu.Lock()
	past := time.Unix(1, 0)
	for lk := range l.conns {
		// Wakes a connection blocked waiting for its next request. A
		// connection that sets its own deadline later checks closing
		// after doing so.
		_ = lk.nc.SetReadDeadline(past)
	}
	// Parked connections have no goroutine to wake: close them here.
	var parked []*link
	if l.parker != nil {
		parked = l.parker.takeAll()
	}
	l.mu.Unlock()
	for _, lk := range parked {
		l.parker.closeParked(lk)
		l.remove(lk)
	}
	if l.parker != nil {
		l.parker.stop()
	}
	return err
}

// Shutdown closes the listener and waits for the fast path's connections
// to finish, until ctx ends; then it closes the rest.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.Close()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		for lk := range l.conns {
			lk.nc.Close()
		}
		l.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Done is closed once the listener is closed or its inner listener
// failed: then no new connections arrive, and Shutdown may be called to
// wait for the fast path's connections.
func (l *Listener) Done() <-chan struct{} { return l.done }

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

func (l *Listener) remove(lk *link) {
	l.mu.Lock()
	delete(l.conns, lk)
	l.nconns.Store(int32(len(l.conns)))
	l.mu.Unlock()
	l.wg.Done()
}

// crowded reports whether so many connections are open that an idle one
// parks at once (Options.ParkAtOnceAbove).
func (l *Listener) crowded() bool {
	n := l.opts.ParkAtOnceAbove
	return n >= 0 && int(l.nconns.Load()) > n
}

// maxSpareConns bounds the conns kept for reuse: enough for the
// connections that park and wake at a time, few enough that thousands
// parked at once leave theirs to the garbage collector (a sync.Pool would
// keep them all for two collections).
const maxSpareConns = 64

// connFor returns a conn to serve lk, a spare one if there is. A parked
// connection has none: the one it had serves others. Under l.mu.
func (l *Listener) connFor(lk *link) *conn {
	var c *conn
	if n := len(l.spare); n > 0 {
		c = l.spare[n-1]
		l.spare[n-1] = nil
		l.spare = l.spare[:n-1]
	} else {
		c = &conn{l: l}
	}
	c.link = lk
	c.src = sourceReader{nc: lk.nc, fd: -1}
	c.req.RemoteAddr = lk.remoteAddr
	return c
}

// spareConn keeps the conn of a connection that parked, for another one.
// It forgets the connection and the last request (whose strings point
// into a read buffer now back in its pool).
func (l *Listener) spareConn(c *conn) {
	c.link = nil
	c.src = sourceReader{fd: -1}
	c.werr = nil
	c.resumed = false
	c.inlineOut, c.inline, c.waitSince, c.parkNow = servedNext, false, 0, false
	c.req.reset()
	c.req.RemoteAddr = ""
	c.w = ResponseWriter{}
	l.mu.Lock()
	if len(l.spare) < maxSpareConns {
		l.spare = append(l.spare, c)
	}
	l.mu.Unlock()
}

// handOff passes nc to Accept. If the listener is closed meanwhile, nc is
// closed.
func (l *Listener) handOff(nc net.Conn) {
	select {
	case l.handoff <- nc:
	case <-l.done:
		select {
		case l.handoff <- nc:
		case <-time.After(100 * time.Millisecond):
			nc.Close()
		}
	}
}

// handoffConn is a connection handed to net/http: reads return the bytes
// the fast path buffered first, then come from the socket. It keeps
// io.ReaderFrom (sendfile) and CloseWrite of the connection it wraps.
type handoffConn struct {
	net.Conn
	l  *Listener
	br *bufio.Reader // nil once drained
}

func (c *handoffConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br.Reset(nil)
		c.l.bufPool.Put(c.br)
		c.br = nil
	}
	return c.Conn.Read(p)
}

// ReadFrom keeps sendfile: net/http looks for io.ReaderFrom on the conn.
func (c *handoffConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite keeps net/http's graceful close working.
func (c *handoffConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Unwrap returns the wrapped connection.
func (c *handoffConn) Unwrap() net.Conn { return c.Conn }

type writerOnly struct{ io.Writer }

var (
	_ io.ReaderFrom = (*handoffConn)(nil)
	_ net.Conn      = (*handoffConn)(nil)
)
