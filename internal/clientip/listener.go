package clientip

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
)

// ListenOptions say what Listen does to a listener's connections.
type ListenOptions struct {
	// ProxyProtocol, when it returns true (it is asked per connection,
	// so a reload may turn it on or off), reads a PROXY protocol header
	// (v1 or v2) from peers that Resolver trusts, and takes the client
	// address from it. From any other peer a PROXY header closes the
	// connection (a client must not be able to name its own address); a
	// plain request is served. Nil: never.
	ProxyProtocol func() bool
	// HeaderTimeout bounds the wait for the PROXY header.
	HeaderTimeout time.Duration
	// Resolver returns the live resolver (it changes on reload).
	Resolver func() *Resolver
	// MaxConnsPerIP returns the live per-address connection limit; 0 is
	// none. Trusted proxies are exempt (their connections carry many
	// clients).
	MaxConnsPerIP func() int
	// OnReject is told about every connection refused, with the reason
	// ("proxy_header" or "conn_limit") and the peer.
	OnReject func(reason string, peer net.Addr)
}

// Listen wraps ln so that its connections report the client address of
// the PROXY header (with ProxyProtocol) and are held to MaxConnsPerIP.
// It sits under both engines: the fast path and net/http read the
// connection only through it.
func Listen(ln net.Listener, opts ListenOptions) net.Listener {
	if opts.ProxyProtocol != nil {
		ln = &proxyListener{Listener: ln, opts: opts}
	}
	if opts.MaxConnsPerIP != nil {
		ln = &limitListener{Listener: ln, opts: opts, count: map[netip.Addr]int{}}
	}
	if opts.ProxyProtocol != nil && opts.OnReject != nil {
		ln = &rejectListener{Listener: ln, onReject: opts.OnReject, proxyProtocol: opts.ProxyProtocol}
	}
	return ln
}

// proxyListener gives the connections of a listener with PROXY protocol
// on a reader of the header (go-proxyproto's, which reads it on the
// first Read, under HeaderTimeout): the header's address is used from a
// trusted peer, refused from any other. With PROXY protocol off (now: a
// reload may turn it on) a connection is returned as accepted, and
// nothing is asked of it (go-proxyproto's own Listener asks every
// connection for both its addresses, a getsockname on a wildcard
// listener, whose answer a socket accepted raw then keeps).
type proxyListener struct {
	net.Listener
	opts ListenOptions
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || !l.opts.ProxyProtocol() {
		return c, err
	}
	policy := proxyproto.REJECT
	if l.opts.Resolver().Trusted(peerOf(c)) {
		policy = proxyproto.USE
	}
	// As go-proxyproto's Listener: 0 is its default, negative none.
	timeout := l.opts.HeaderTimeout
	switch {
	case timeout == 0:
		timeout = proxyproto.DefaultReadHeaderTimeout
	case timeout < 0:
		timeout = 0
	}
	return newProxyConn(c, proxyproto.WithPolicy(policy), proxyproto.SetReadHeaderTimeout(timeout)), nil
}

// peerOf is c's peer address, taken from the value a socket accepted raw
// keeps (no net.Addr made for it) where it can.
func peerOf(c net.Conn) netip.Addr {
	if s, ok := c.(interface{ RemoteAddrPort() netip.AddrPort }); ok {
		// No zone: a zoned address matches no prefix (netip.Prefix.Contains).
		return s.RemoteAddrPort().Addr().WithZone("").Unmap()
	}
	return addrOf(c.RemoteAddr())
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	return Peer(a.String())
}

// rejectListener reports connections whose PROXY header was refused.
type rejectListener struct {
	net.Listener
	onReject      func(string, net.Addr)
	proxyProtocol func() bool
}

func (l *rejectListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.proxyProtocol() {
		// No header is read from this connection (the PROXY listener
		// skipped it): nothing to report, no wrapper to pay for.
		return c, nil
	}
	return &rejectConn{Conn: c, onReject: l.onReject}, nil
}

type rejectConn struct {
	net.Conn
	onReject func(string, net.Addr)
	once     sync.Once
}

func (c *rejectConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && (errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) || isHeaderError(err)) {
		c.once.Do(func() { c.onReject("proxy_header", c.Conn.RemoteAddr()) })
	}
	return n, err
}

// isHeaderError reports a malformed PROXY header from a trusted peer.
func isHeaderError(err error) bool {
	for _, e := range []error{proxyproto.ErrCantReadVersion1Header, proxyproto.ErrLineMustEndWithCrlf,
		proxyproto.ErrCantReadProtocolVersionAndCommand, proxyproto.ErrInvalidAddress, proxyproto.ErrInvalidPortNumber,
		proxyproto.ErrUnsupportedProtocolVersionAndCommand, proxyproto.ErrUnsupportedAddressFamilyAndProtocol} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Unwrap returns the wrapped connection.
func (c *rejectConn) Unwrap() net.Conn { return c.Conn }

// ReadThrough says Read buffers nothing of its own (fastpath.ReadThrough:
// an idle fast-path connection waits on the socket underneath).
func (c *rejectConn) ReadThrough() {}

// Rewrap puts nc in place of the wrapped connection (fastpath.Rewrapper:
// a parked fast-path connection lets go of Go's socket, and gets a new
// one over the same descriptor when it wakes). Only while nothing else
// uses the connection.
func (c *rejectConn) Rewrap(nc net.Conn) { c.Conn = nc }

// errTooManyConns ends a connection beyond max_conns_per_ip.
var errTooManyConns = errors.New("too many connections from this address")

// limitListener holds each client address to MaxConnsPerIP connections.
// The address is known only once the PROXY header is read, which happens
// on the connection's own goroutine: so the count is taken at the first
// Read, not in Accept (one slow peer must not stall the accept loop).
type limitListener struct {
	net.Listener
	opts  ListenOptions
	mu    sync.Mutex
	count map[netip.Addr]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.opts.MaxConnsPerIP() <= 0 {
		// No limit now: the connection is not counted (a reload that
		// sets one counts the connections accepted after it, as nginx's
		// limit_conn), and costs no wrapper.
		return c, nil
	}
	return &limitConn{Conn: c, l: l}, nil
}

// acquire counts a connection from a; false when a is over the limit.
func (l *limitListener) acquire(a netip.Addr) bool {
	max := l.opts.MaxConnsPerIP()
	l.mu.Lock()
	defer l.mu.Unlock()
	if max > 0 && l.count[a] >= max {
		return false
	}
	l.count[a]++
	return true
}

func (l *limitListener) release(a netip.Addr) {
	l.mu.Lock()
	if l.count[a]--; l.count[a] <= 0 {
		delete(l.count, a)
	}
	l.mu.Unlock()
}

type limitConn struct {
	net.Conn
	l       *limitListener
	state   atomic.Int32 // 0 new, 1 counted, 2 exempt, 3 refused, 4 closed
	addr    netip.Addr
	checkMu sync.Mutex
}

// check counts the connection on its first use.
func (c *limitConn) check() error {
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	switch c.state.Load() {
	case 1, 2:
		return nil
	case 3, 4:
		return errTooManyConns
	}
	a := peerOf(c.Conn)
	var res *Resolver
	if c.l.opts.Resolver != nil {
		res = c.l.opts.Resolver()
	}
	if !a.IsValid() || res.Trusted(a) || c.l.opts.MaxConnsPerIP() <= 0 {
		c.state.Store(2)
		return nil
	}
	if !c.l.acquire(a) {
		c.state.Store(3)
		if c.l.opts.OnReject != nil {
			c.l.opts.OnReject("conn_limit", c.Conn.RemoteAddr())
		}
		return errTooManyConns
	}
	c.addr = a
	c.state.Store(1)
	return nil
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.state.Load() != 1 && c.state.Load() != 2 {
		if err := c.check(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *limitConn) Close() error {
	c.checkMu.Lock()
	if c.state.Swap(4) == 1 {
		c.l.release(c.addr)
	}
	c.checkMu.Unlock()
	return c.Conn.Close()
}

// Unwrap returns the wrapped connection.
func (c *limitConn) Unwrap() net.Conn { return c.Conn }

// ReadThrough says Read buffers nothing of its own (fastpath.ReadThrough).
// The limit is checked on the first Read, which the fast path still makes
// through this wrapper.
func (c *limitConn) ReadThrough() {}

// Rewrap puts nc in place of the wrapped connection (fastpath.Rewrapper),
// keeping the count: a parked connection still holds its slot.
func (c *limitConn) Rewrap(nc net.Conn) { c.Conn = nc }

// ReadFrom keeps sendfile through the wrapper (both engines look for
// io.ReaderFrom on the connection).
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) { return readFrom(c.Conn, r) }

// CloseWrite keeps net/http's graceful close.
func (c *limitConn) CloseWrite() error { return closeWrite(c.Conn) }

// ReadFrom keeps sendfile through the wrapper.
func (c *rejectConn) ReadFrom(r io.Reader) (int64, error) { return readFrom(c.Conn, r) }

// CloseWrite keeps net/http's graceful close.
func (c *rejectConn) CloseWrite() error { return closeWrite(c.Conn) }

// SyscallConn keeps the fast path's socket-level calls through the
// wrappers (ResponseWriter.ClientGone's non-consuming peek); reads stay
// on the wrapper.
func (c *limitConn) SyscallConn() (syscall.RawConn, error)  { return syscallConn(c.Conn) }
func (c *rejectConn) SyscallConn() (syscall.RawConn, error) { return syscallConn(c.Conn) }

func syscallConn(c net.Conn) (syscall.RawConn, error) {
	if sc, ok := c.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("clientip: not a socket")
}

func readFrom(c net.Conn, r io.Reader) (int64, error) {
	if rf, ok := c.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c}, r)
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type writerOnly struct{ io.Writer }

var (
	_ io.ReaderFrom = (*limitConn)(nil)
	_ io.ReaderFrom = (*rejectConn)(nil)
)

var (
	_ syscall.Conn = (*limitConn)(nil)
	_ syscall.Conn = (*rejectConn)(nil)
)
