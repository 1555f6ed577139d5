//go:build linux

package fastpath

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"portico/internal/rawsock"
)

// Detaching. A parked connection lets go of Go's socket too: the parker
// keeps a duplicate of its descriptor (in its epoll instance), closes the
// net.Conn (Go's netFD, its pollDesc and deadline timers, its addresses:
// most of what a parked connection cost, and the pollDesc is never given
// back to the heap), and puts a stand-in (detachedSocket) where the socket
// was: in link.nc, or under the wrappers of the listener (a Rewrapper,
// such as internal/clientip's, which keep their state: the connection
// limit slot stays taken). When the connection wakes, a new net.Conn is
// built over the same descriptor (net.FileConn) and takes the stand-in's
// place. The kernel's socket never changes: the peer sees nothing.
//
// Only a connection parked for Options.ParkDetachAfter (10s) is
// detached: one that comes back sooner wakes without the cost below.
//
// What it costs in system calls (strace, one connection parked after 2s
// and woken): parking 5 instead of 1 (getsockopt, the dup, epoll_ctl ADD,
// and closing the net.Conn: Go's epoll_ctl DEL and close); waking 19 more
// than before (our epoll_ctl DEL; os.NewFile and its Close: fcntl,
// epoll_ctl ADD and DEL; net.FileConn: fcntl twice, getsockopt,
// getsockname, getpeername, epoll_ctl ADD, 5 setsockopt for TCP_NODELAY
// and keep-alive; the SetKeepAlive(false) that undoes it; the close). A
// connection parks only after it waited for a second, or at once on a
// crowded server when its previous request came half a second earlier or
// more, so those microseconds are paid at most about once per second
// per connection, never within a burst of requests.

// detachedSocket stands in for a parked connection's socket: nothing
// reads or writes a parked connection, and closing it is the parker's
// work (the descriptor it holds).
type detachedSocket struct{}

func (detachedSocket) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (detachedSocket) Write([]byte) (int, error)        { return 0, net.ErrClosed }
func (detachedSocket) Close() error                     { return nil }
func (detachedSocket) LocalAddr() net.Addr              { return detachedAddr{} }
func (detachedSocket) RemoteAddr() net.Addr             { return detachedAddr{} }
func (detachedSocket) SetDeadline(time.Time) error      { return nil }
func (detachedSocket) SetReadDeadline(time.Time) error  { return nil }
func (detachedSocket) SetWriteDeadline(time.Time) error { return nil }

type detachedAddr struct{}

func (detachedAddr) Network() string { return "tcp" }
func (detachedAddr) String() string  { return "parked" }

// socketUnder returns the TCP socket under nc and the wrapper right above
// it (nil if nc is the socket), if every wrapper reads through and the
// one above the socket can take another (Rewrapper).
func socketUnder(nc net.Conn) (tc *net.TCPConn, parent Rewrapper, ok bool) {
	var above ReadThrough
	for i := 0; i < 8; i++ {
		switch c := nc.(type) {
		case *net.TCPConn:
			if above == nil {
				return c, nil, true
			}
			rw, ok := above.(Rewrapper)
			return c, rw, ok
		case detachedSocket:
			if above == nil {
				return nil, nil, true
			}
			rw, ok := above.(Rewrapper)
			return nil, rw, ok
		case ReadThrough:
			if !readsThroughNow(c) {
				return nil, nil, false
			}
			above = c
			nc = c.Unwrap()
		default:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// rawSocketUnder returns the rawsock.Socket under nc's read-through
// wrappers, if that is what nc is.
func rawSocketUnder(nc net.Conn) *rawsock.Socket {
	s, _ := underReadThrough(nc).(*rawsock.Socket)
	return s
}

// detachLongParked detaches the connections parked for ParkDetachAfter
// or longer. Under l.mu, in the timer's round.
func (p *parker) detachLongParked(now time.Time) {
	d := p.l.opts.ParkDetachAfter
	if d < 0 {
		return
	}
	limit := now.Add(-d)
	for i, lk := range p.byFD.links {
		fd := int32(i)
		if lk == nil || lk.detached || lk.parkedAt > instantOf(limit) {
			continue
		}
		if s := rawSocketUnder(lk.nc); s != nil {
			// Accepted raw (rawsock.Listener): its descriptor, the one
			// registered here, stays; only a Go socket it attached goes.
			if s.Detach() {
				p.detaches++
			}
			lk.parkedAt = instantOf(now.Add(time.Hour)) // nothing more to let go of
			continue
		}
		if tc, _, ok := socketUnder(lk.nc); !ok || tc == nil {
			lk.parkedAt = instantOf(now.Add(time.Hour)) // not detachable: not looked at again soon
			continue
		}
		// Go's descriptor leaves the epoll instance first: once closed,
		// its number may name another socket.
		if p.ctl(syscall.EPOLL_CTL_DEL, int(fd), 0) != nil {
			continue
		}
		lk.polled = false
		if ok, _ := p.detach(lk); !ok {
			// Registered again as it was (the system refused the
			// duplicate); if that fails too, the idle timeout still
			// closes it.
			if p.ctl(syscall.EPOLL_CTL_ADD, int(fd), syscall.EPOLLIN|syscall.EPOLLRDHUP|epollOneShot) == nil {
				lk.polled = true
			}
			continue
		}
		p.byFD.remove(fd)
		p.byFD.put(lk.fd, lk)
		p.detaches++
	}
}

// ctl is epoll_ctl on the parker's instance. Under l.mu: its arguments
// pass through the parker's fields.
func (p *parker) ctl(op, fd int, events uint32) error {
	p.ctlOp, p.ctlFD, p.ctlEvents, p.ctlErr = op, fd, events, nil
	if err := p.epRaw.Control(p.ctlFn); err != nil {
		return err
	}
	return p.ctlErr
}

// ctlStep is ctl's Control callback.
func (p *parker) ctlStep(epfd uintptr) {
	ev := syscall.EpollEvent{Events: p.ctlEvents, Fd: int32(p.ctlFD)}
	p.ctlErr = syscall.EpollCtl(int(epfd), p.ctlOp, p.ctlFD, &ev)
}

// detach hands lk's socket to the parker as a bare descriptor, registered
// with its epoll instance: false (and nothing changed) if lk's wrappers
// cannot take another socket, or the system refuses. Under l.mu.
func (p *parker) detach(lk *link) (bool, error) {
	tc, parent, ok := socketUnder(lk.nc)
	if !ok || tc == nil {
		return false, nil
	}
	fd := -1
	var keepAlive int
	var err error
	cerr := lk.raw.Control(func(s uintptr) {
		keepAlive, err = syscall.GetsockoptInt(int(s), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		if err != nil {
			return
		}
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			err = e
			return
		}
		fd = int(r)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("fastpath: detaching a parked connection: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollOneShot, Fd: int32(fd)}
	cerr = p.epRaw.Control(func(epfd uintptr) {
		err = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_ADD, fd, &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		syscall.Close(fd)
		return false, fmt.Errorf("fastpath: parking a connection: %w", err)
	}
	// The duplicate keeps the socket open: closing Go's descriptor sends
	// nothing to the peer.
	tc.Close()
	if parent != nil {
		parent.Rewrap(detachedSocket{})
	} else {
		lk.nc = detachedSocket{}
	}
	lk.fd = int32(fd)
	lk.detached = true
	lk.keepAlive = keepAlive != 0
	lk.raw, lk.rawChecked = nil, false
	lk.wd = 0 // the next socket has no write deadline
	return true, nil
}

// attach gives a woken connection a net.Conn again, over the descriptor
// the parker kept, where the stand-in was. On failure the descriptor is
// closed and the stand-in stays: reading it fails, and the connection
// closes as after any read error.
func (p *parker) attach(lk *link) error {
	fd := int(lk.fd)
	// The new net.Conn's descriptor is a duplicate of this one, which
	// would keep its (spent, one-shot) registration alive: remove it.
	_ = p.epRaw.Control(func(epfd uintptr) {
		_ = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_DEL, fd, nil)
	})
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		lk.detached = false
		return fmt.Errorf("fastpath: waking a parked connection: %w", err)
	}
	if tc, ok := nc.(*net.TCPConn); ok && !lk.keepAlive {
		_ = tc.SetKeepAlive(false) // net.FileConn turns it on
	}
	_, parent, _ := socketUnder(lk.nc)
	l := p.l
	l.mu.Lock() // Close reads lk.nc
	if parent != nil {
		parent.Rewrap(nc)
	} else {
		lk.nc = nc
	}
	lk.detached = false
	l.mu.Unlock()
	return nil
}

// closeParked closes a parked connection that will not wake (its idle
// deadline passed, or the listener closes). Its wrappers close too (a
// connection-limit slot is given back).
func (p *parker) closeParked(lk *link) {
	if lk.detached {
		syscall.Close(int(lk.fd))
		lk.detached = false
	}
	lk.nc.Close()
}
