package clientip

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyReadBuffer is what go-proxyproto may read past the PROXY header
// (its buffer). A first Read into at least this much takes all of it;
// both engines read into 4 KiB or more.
const proxyReadBuffer = 256

// proxyConn is a connection of a PROXY-protocol listener. go-proxyproto
// reads and checks the header (on the first Read, under the header
// timeout) and buffers what came after it; the first Read of at least
// proxyReadBuffer bytes takes that. From then on the connection is the
// socket with the header's addresses: proxyConn reads and writes the
// socket itself, buffers nothing (fastpath.ReadThrough, so an idle
// connection is parked like any other) and can take another socket
// while parked (fastpath.Rewrapper, Go's socket let go).
type proxyConn struct {
	pc *proxyproto.Conn
	// through is set, by the reading goroutine, once go-proxyproto holds
	// nothing: reads, writes and deadlines then go to sock, and the
	// addresses come from hdr (or the socket, as go-proxyproto's do).
	through atomic.Bool
	sock    atomic.Pointer[net.Conn]
	hdr     *proxyproto.Header // kept when through is set; nil: none came
}

func newProxyConn(c net.Conn, opts ...func(*proxyproto.Conn)) *proxyConn {
	opts = append(opts, proxyproto.WithBufferSize(proxyReadBuffer))
	p := &proxyConn{pc: proxyproto.NewConn(c, opts...)}
	p.sock.Store(&c)
	return p
}

func (p *proxyConn) socket() net.Conn { return *p.sock.Load() }

// current is what reads, writes and deadlines go to: go-proxyproto's
// reader until it holds nothing, then the socket.
func (p *proxyConn) current() net.Conn {
	if p.through.Load() {
		return p.socket()
	}
	return p.pc
}

func (p *proxyConn) Read(b []byte) (int, error) {
	if p.through.Load() {
		return p.socket().Read(b)
	}
	n, err := p.pc.Read(b)
	if err == nil && len(b) >= proxyReadBuffer {
		// The header was read and accepted (else err), and whatever
		// go-proxyproto buffered after it fit in b.
		p.hdr = p.pc.ProxyHeader()
		p.through.Store(true)
	}
	return n, err
}

// Write waits for the header first, before it is read (go-proxyproto's).
func (p *proxyConn) Write(b []byte) (int, error) { return p.current().Write(b) }

func (p *proxyConn) Close() error { return p.current().Close() }

// RemoteAddr is the header's source, as go-proxyproto's: the socket's
// peer without a header, or with a LOCAL one (a health check).
func (p *proxyConn) RemoteAddr() net.Addr {
	if !p.through.Load() {
		return p.pc.RemoteAddr()
	}
	if h := p.hdr; h != nil && !h.Command.IsLocal() && h.SourceAddr != nil {
		return h.SourceAddr
	}
	return p.socket().RemoteAddr()
}

// LocalAddr is the header's destination, or the socket's address.
func (p *proxyConn) LocalAddr() net.Addr {
	if !p.through.Load() {
		return p.pc.LocalAddr()
	}
	if h := p.hdr; h != nil && !h.Command.IsLocal() && h.DestinationAddr != nil {
		return h.DestinationAddr
	}
	return p.socket().LocalAddr()
}

func (p *proxyConn) SetDeadline(t time.Time) error { return p.current().SetDeadline(t) }

func (p *proxyConn) SetReadDeadline(t time.Time) error { return p.current().SetReadDeadline(t) }

func (p *proxyConn) SetWriteDeadline(t time.Time) error { return p.current().SetWriteDeadline(t) }

// Unwrap returns the socket.
func (p *proxyConn) Unwrap() net.Conn { return p.socket() }

// ReadThrough marks the connection as a wrapper the fast path may wait
// under (fastpath.ReadThrough); ReadsThroughNow says when it may.
func (p *proxyConn) ReadThrough() {}

// ReadsThroughNow reports whether go-proxyproto's buffer is behind: until
// then bytes of the client may wait in it, not in the socket.
func (p *proxyConn) ReadsThroughNow() bool { return p.through.Load() }

// Rewrap puts nc in place of the socket (fastpath.Rewrapper). Only while
// nothing else uses the connection, and only once it reads through.
func (p *proxyConn) Rewrap(nc net.Conn) { p.sock.Store(&nc) }

// ReadFrom keeps sendfile (both engines look for io.ReaderFrom).
func (p *proxyConn) ReadFrom(r io.Reader) (int64, error) { return readFrom(p.current(), r) }

// CloseWrite keeps net/http's graceful close.
func (p *proxyConn) CloseWrite() error { return closeWrite(p.socket()) }

// SyscallConn keeps the fast path's socket-level calls (its peek).
func (p *proxyConn) SyscallConn() (syscall.RawConn, error) { return syscallConn(p.socket()) }

var (
	_ io.ReaderFrom = (*proxyConn)(nil)
	_ syscall.Conn  = (*proxyConn)(nil)
)
