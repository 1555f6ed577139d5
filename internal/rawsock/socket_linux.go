package rawsock

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Listener accepts TCP connections with this package's system calls and
// yields them as *Socket: a connection that is read, answered and closed
// without waiting (a request already there on accept, an answer the
// socket takes at once) costs accept4, setsockopt, read, write and close,
// none of them through the Go scheduler, and no netpoller registration.
//
// Go's own Accept makes three more system calls per connection
// (getsockname, epoll_ctl ADD and DEL), makes accept4, setsockopt and
// close through the scheduler's bookkeeping, which wakes its monitor
// thread (measured with strace: 10.7 system calls per new connection,
// sysmon's nanosleep 2 of them, against 5.7 here), and allocates a netFD,
// its pollDesc (never given back to the heap) and two addresses. A *Socket
// gets a Go socket of its own only when it must wait.
type Listener struct {
	tl *net.TCPListener
	// waiter is a net.TCPConn over a duplicate of the listening socket:
	// a listener's own RawConn cannot wait (its Read fails with EINVAL),
	// a connection's waits for readability, which for a listening socket
	// is a connection to accept.
	waiter *net.TCPConn
	rc     syscall.RawConn
	local  *net.TCPAddr // nil for a wildcard address: asked per connection

	// The accept callback's state, bound once (Accept runs on one
	// goroutine at a time, under mu).
	mu       sync.Mutex
	acceptFn func(uintptr) bool
	nfd      int
	sa       syscall.RawSockaddrAny
	err      error
}

// NewListener accepts tl's connections as *Socket. tl is owned by the
// Listener from now on.
func NewListener(tl *net.TCPListener) (*Listener, error) {
	f, err := tl.File()
	if err != nil {
		return nil, err
	}
	waiter, err := fileTCPConn(f)
	if err != nil {
		return nil, err
	}
	rc, err := waiter.SyscallConn()
	if err != nil {
		waiter.Close()
		return nil, err
	}
	l := &Listener{tl: tl, waiter: waiter, rc: rc}
	if a, ok := tl.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		l.local = a
	}
	l.acceptFn = l.acceptStep
	return l, nil
}

// Accept waits for the next connection. Its error is temporary (a
// net.Error, as net.TCPListener's) when descriptors run out.
func (l *Listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = nil
	if err := l.rc.Read(l.acceptFn); err != nil {
		if errors.Is(err, net.ErrClosed) {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.tl.Addr(), Err: err}
	}
	if l.err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.tl.Addr(), Err: os.NewSyscallError("accept4", l.err)}
	}
	fd := l.nfd
	// As net.TCPListener's connections: no Nagle delay on small answers.
	// (Linux does not pass TCP_NODELAY from the listener to its
	// connections.)
	_ = setsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	s := &Socket{fd: fd, peer: sockaddrAddrPort(&l.sa)}
	if l.local != nil {
		s.local.Store(l.local)
	}
	s.raw.s = s
	return s, nil
}

func (l *Listener) acceptStep(lfd uintptr) bool {
	for {
		size := uint32(syscall.SizeofSockaddrAny)
		r, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, lfd, uintptr(unsafe.Pointer(&l.sa)), uintptr(unsafe.Pointer(&size)),
			syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			l.nfd = int(r)
			return true
		case syscall.EINTR, syscall.ECONNABORTED:
			continue // as Go's accept: the next one
		case syscall.EAGAIN:
			return false // wait for one in the netpoller
		}
		l.err = e
		return true
	}
}

// Close closes the listening socket; a waiting Accept returns an error.
func (l *Listener) Close() error {
	// The listening socket first: closing the waiter wakes Accept, whose
	// caller may close the listener again (and must be the one told it
	// was closed already).
	err := l.tl.Close()
	l.waiter.Close()
	return err
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.tl.Addr() }

// sockaddrAddrPort converts an accepted peer's address: a value, kept
// in the Socket (no allocation per connection; RemoteAddr, asked once or
// twice per connection, makes the net.Addr).
func sockaddrAddrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), p.Port>>8|p.Port<<8)
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		a := netip.AddrFrom16(p.Addr)
		if p.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(p.Scope_id)); err == nil {
				a = a.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(a, p.Port>>8|p.Port<<8)
	}
	return netip.AddrPort{}
}

// tcpAddr is a as a *net.TCPAddr, with the zone an IPv6 address has.
func tcpAddr(a netip.AddrPort) *net.TCPAddr {
	if !a.IsValid() {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(a)
}

// Socket is an accepted TCP connection (Listener) read and written with
// this package's calls while they need not wait. The first call that
// would wait (a read with nothing there, a write the socket cannot take
// yet, a file to send, a deadline to keep) attaches a Go socket to it: a
// net.TCPConn over a duplicate descriptor, registered with the netpoller,
// through which that call and all later ones go, deadlines included.
//
// The accepted descriptor stays open until Close: it is the connection's
// identity (SyscallConn's Control gives it), so that a second epoll
// instance that registered it (the fast path's parker) keeps a valid
// registration whether or not a Go socket is attached. Detach closes the
// Go socket again, for a connection that will wait long.
//
// Its methods may be called from several goroutines, as a net.Conn's;
// Close waits for no read or write, and the descriptor is closed only once
// no call of this package uses it any more, so its number never names
// another connection under a call.
//
// Every idle connection holds one, so it is kept small (112 bytes, and
// no other allocation): the peer's address is a value, deadlines are
// UnixNano, the flags are packed.
type Socket struct {
	fd   int
	refs atomic.Int64 // raw calls in progress, plus closingBit once closed
	peer netip.AddrPort
	raw  socketRawConn
	// local is the listener's address, or for a wildcard listener the
	// socket's, asked when first wanted.
	local atomic.Pointer[net.TCPAddr]

	mu sync.Mutex // attach, detach, deadlines, closing
	nc atomic.Pointer[goSocket]
	// The deadlines set last (UnixNano, 0 for none), for a Go socket
	// attached later.
	rd, wd int64
	// A deadline set in the past fails the raw calls too, as it fails a
	// net.Conn's at once (net/http aborts its background read so; the
	// fast path's parker wakes a wait so). One that passes later is
	// kept by the attached socket's waits: a raw call does not wait.
	rdPast, wdPast atomic.Bool
	shut           atomic.Bool // the descriptor is closed
	closed         bool        // Close was called (under mu)
}

// goSocket is an attached Go socket and its RawConn.
type goSocket struct {
	*net.TCPConn
	rc syscall.RawConn
}

const closingBit = 1 << 40

// acquire marks a raw call on s.fd in progress; false if s is closed.
func (s *Socket) acquire() bool {
	if s.refs.Add(1)&closingBit != 0 {
		s.release()
		return false
	}
	return true
}

func (s *Socket) release() {
	if s.refs.Add(-1) == closingBit {
		s.closeFD()
	}
}

func (s *Socket) closeFD() {
	if s.shut.CompareAndSwap(false, true) {
		closeFD(s.fd)
	}
}

func (s *Socket) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: tcpAddr(s.peer), Err: err}
}

// Read reads what the socket has, or, when it has nothing yet, waits
// through an attached Go socket.
func (s *Socket) Read(p []byte) (int, error) {
	if nc := s.nc.Load(); nc != nil {
		return nc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if s.rdPast.Load() {
		return 0, s.opError("read", os.ErrDeadlineExceeded)
	}
	if !s.acquire() {
		return 0, s.opError("read", net.ErrClosed)
	}
	n, err := Read(s.fd, p)
	s.release()
	switch {
	case err == syscall.EAGAIN:
		nc, err := s.attach()
		if err != nil {
			return 0, err
		}
		return nc.Read(p)
	case err != nil:
		return 0, s.opError("read", os.NewSyscallError("read", err))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes what the socket takes at once, and the rest through an
// attached Go socket, which waits for room under the write deadline.
func (s *Socket) Write(p []byte) (int, error) {
	if nc := s.nc.Load(); nc != nil {
		return nc.Write(p)
	}
	if s.wdPast.Load() {
		return 0, s.opError("write", os.ErrDeadlineExceeded)
	}
	if !s.acquire() {
		return 0, s.opError("write", net.ErrClosed)
	}
	done, err := Write(s.fd, p)
	s.release()
	switch {
	case err == nil:
		return done, nil
	case err != syscall.EAGAIN:
		return done, s.opError("write", os.NewSyscallError("write", err))
	}
	nc, err := s.attach()
	if err != nil {
		return done, err
	}
	n, err := nc.Write(p[done:])
	return done + n, err
}

// ReadFrom sends r through the attached Go socket: sendfile(2) for a file.
func (s *Socket) ReadFrom(r io.Reader) (int64, error) {
	nc, err := s.attach()
	if err != nil {
		return 0, err
	}
	return nc.ReadFrom(r)
}

// attach gives s a Go socket (once), through which every later call goes.
func (s *Socket) attach() (*goSocket, error) {
	if nc := s.nc.Load(); nc != nil {
		return nc, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if nc := s.nc.Load(); nc != nil {
		return nc, nil
	}
	if s.closed || !s.acquire() {
		return nil, s.opError("read", net.ErrClosed)
	}
	tc, err := s.newGoSocket()
	s.release()
	if err != nil {
		return nil, s.opError("attach", err)
	}
	if s.rd != 0 {
		_ = tc.SetReadDeadline(time.Unix(0, s.rd))
	}
	if s.wd != 0 {
		_ = tc.SetWriteDeadline(time.Unix(0, s.wd))
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		tc.Close()
		return nil, s.opError("attach", err)
	}
	nc := &goSocket{TCPConn: tc, rc: rc}
	s.nc.Store(nc)
	return nc, nil
}

// newGoSocket makes a net.TCPConn over a duplicate of s.fd (net.FileConn
// duplicates the descriptor it is given, so that one, a duplicate too, is
// closed right after).
func (s *Socket) newGoSocket() (*net.TCPConn, error) {
	dup, err := dupFD(s.fd)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	tc, err := fileTCPConn(os.NewFile(uintptr(dup), ""))
	if err != nil {
		return nil, err
	}
	_ = tc.SetKeepAlive(false) // net.FileConn turns probes on; accepted sockets have none
	return tc, nil
}

// fileTCPConn makes a net.TCPConn, registered with the netpoller, over a
// duplicate of f's TCP socket, and closes f.
func fileTCPConn(f *os.File) (*net.TCPConn, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, errors.New("rawsock: not a TCP socket")
	}
	return tc, nil
}

// Detach closes the attached Go socket, if any (its netpoller
// registration, pollDesc and timers), keeping the connection: later calls
// are raw again, until one must wait. Only while nothing reads or writes
// s. It reports whether there was one.
func (s *Socket) Detach() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	nc := s.nc.Load()
	if nc == nil {
		return false
	}
	s.nc.Store(nil)
	nc.Close()
	return true
}

// Attached reports whether s has a Go socket now.
func (s *Socket) Attached() bool { return s.nc.Load() != nil }

// Close closes the connection. A raw call in progress finishes first;
// a wait in the attached socket returns an error.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.opError("close", net.ErrClosed)
	}
	s.closed = true
	nc := s.nc.Load()
	s.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
	if s.refs.Add(closingBit) == closingBit {
		s.closeFD()
	}
	return nil
}

// CloseWrite shuts the sending side down (net/http's graceful close).
func (s *Socket) CloseWrite() error {
	if !s.acquire() {
		return s.opError("close", net.ErrClosed)
	}
	err := shutdownFD(s.fd, syscall.SHUT_WR)
	s.release()
	if err != nil {
		return s.opError("close", os.NewSyscallError("shutdown", err))
	}
	return nil
}

// RemoteAddr is the peer's address, a new *net.TCPAddr per call (net/http
// asks once per connection).
func (s *Socket) RemoteAddr() net.Addr { return tcpAddr(s.peer) }

// RemoteAddrPort is the peer's address as the value the Socket keeps.
func (s *Socket) RemoteAddrPort() netip.AddrPort { return s.peer }

// LocalAddr is the listener's address, or, for a wildcard listener, the
// socket's, asked once. It takes no lock: errors made under s.mu call it.
func (s *Socket) LocalAddr() net.Addr {
	if a := s.local.Load(); a != nil {
		return a
	}
	var sa syscall.RawSockaddrAny
	a := &net.TCPAddr{}
	if s.acquire() {
		if getsockname(s.fd, &sa) == nil {
			a = tcpAddr(sockaddrAddrPort(&sa))
		}
		s.release()
	}
	s.local.CompareAndSwap(nil, a)
	return s.local.Load()
}

// Deadlines apply to waits, which only an attached Go socket does: they
// are kept until one is.

func (s *Socket) SetDeadline(t time.Time) error      { return s.setDeadline(t, true, true) }
func (s *Socket) SetReadDeadline(t time.Time) error  { return s.setDeadline(t, true, false) }
func (s *Socket) SetWriteDeadline(t time.Time) error { return s.setDeadline(t, false, true) }

func (s *Socket) setDeadline(t time.Time, read, write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := isPast(t)
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	if read {
		s.rd = ns
		s.rdPast.Store(past)
	}
	if write {
		s.wd = ns
		s.wdPast.Store(past)
	}
	nc := s.nc.Load()
	switch {
	case nc == nil:
		return nil
	case read && write:
		return nc.SetDeadline(t)
	case read:
		return nc.SetReadDeadline(t)
	}
	return nc.SetWriteDeadline(t)
}

func isPast(t time.Time) bool { return !t.IsZero() && !t.After(time.Now()) }

// SyscallConn gives the connection's descriptor to Control, and to Read
// and Write callbacks: the accepted one while no Go socket is attached
// (a callback that would wait attaches one), the Go socket's after.
func (s *Socket) SyscallConn() (syscall.RawConn, error) { return &s.raw, nil }

type socketRawConn struct{ s *Socket }

// Control runs f with the accepted descriptor, the connection's identity.
func (r *socketRawConn) Control(f func(fd uintptr)) error {
	s := r.s
	if !s.acquire() {
		return s.opError("raw-control", net.ErrClosed)
	}
	f(uintptr(s.fd))
	s.release()
	return nil
}

func (r *socketRawConn) Read(f func(fd uintptr) bool) error  { return r.run(f, true) }
func (r *socketRawConn) Write(f func(fd uintptr) bool) error { return r.run(f, false) }

func (r *socketRawConn) run(f func(fd uintptr) bool, read bool) error {
	s := r.s
	nc := s.nc.Load()
	if nc == nil {
		if !s.acquire() {
			return s.opError("raw", net.ErrClosed)
		}
		done := f(uintptr(s.fd))
		s.release()
		if done {
			return nil
		}
		var err error
		if nc, err = s.attach(); err != nil {
			return err
		}
	}
	if read {
		return nc.rc.Read(f)
	}
	return nc.rc.Write(f)
}

var (
	_ net.Conn        = (*Socket)(nil)
	_ io.ReaderFrom   = (*Socket)(nil)
	_ syscall.Conn    = (*Socket)(nil)
	_ net.Listener    = (*Listener)(nil)
	_ syscall.RawConn = (*socketRawConn)(nil)
)

func setsockoptInt(fd, level, opt, value int) error {
	v := int32(value)
	_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v)), 4, 0)
	if e != 0 {
		return e
	}
	return nil
}

func closeFD(fd int) {
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
}

func shutdownFD(fd, how int) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	if e != 0 {
		return e
	}
	return nil
}

func dupFD(fd int) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func getsockname(fd int, sa *syscall.RawSockaddrAny) error {
	size := uint32(syscall.SizeofSockaddrAny)
	_, _, e := syscall.RawSyscall(syscall.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&size)))
	if e != 0 {
		return e
	}
	return nil
}
