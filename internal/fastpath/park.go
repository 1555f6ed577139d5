//go:build linux

package fastpath

import (
	"container/heap"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Parking. A kept-alive connection idle for a while (Options.
// ParkIdleAfter) gives up its goroutine too: its socket goes into the
// listener's own epoll instance (one-shot, level-triggered: bytes already
// there report at once), the goroutine ends, its conn serves others
// (Listener.connFor), and the connection is its link alone (a few hundred
// bytes with the socket, instead of a goroutine's stack and the engine's
// state).
// When the socket becomes readable (a request, the client closing), a new
// goroutine takes it up where the old one stopped (Listener.resume). Go's
// netpoller keeps the socket registered meanwhile; Linux allows a second
// epoll instance on the same socket.
//
// Only a connection that really waits is parked: parking and waking cost
// a system call and a goroutine each, which a client that sends its next
// request within a second (a benchmark, a page's assets) should not pay.
// So a connection waits first on its goroutine, as always, advertising
// since when (link.idle); once a second the parker kicks the ones idle
// since the last round (their read deadline moves to the past, which
// wakes them), and they park.
//
// The idle timeout is kept to the nanosecond: a parked connection is in a
// heap by read deadline, and a timer closes it at its deadline, as the
// netpoller would have. Closing the listener closes its parked
// connections at once, like idle ones.

// kicked is link.idle once the parker asked the connection to park.
const kicked = -1

// errParked ends a goroutine whose connection is parked.
var errParked = errors.New("fastpath: connection parked")

// parker holds a listener's parked connections. Its fields are guarded by
// Listener.mu, except those its goroutines own.
type parker struct {
	l     *Listener
	after time.Duration
	ep    *os.File // the epoll instance, itself waited on in the netpoller
	epRaw syscall.RawConn
	byFD  parkedTable
	heap  deadlineHeap
	// wake tells the timer goroutine to look at the heap again (a
	// connection parked with an earlier deadline than it sleeps to).
	wake        chan struct{}
	done        chan struct{}
	stopOnce    sync.Once
	stopped     bool
	parks       int       // connections parked so far (tests)
	parksAtOnce int       // of which without waiting ParkIdleAfter
	detaches    int       // parked connections detached so far
	release     *releaser // returns memory after a wave of parking
	sleepsTo    time.Time // when the timer goroutine wakes next, under l.mu

	// The arguments and results of the callbacks given to Control, for
	// add and ctl, which run under l.mu: bound once, the callbacks
	// allocate nothing (closures would, on every park).
	addLink      *link
	addErr       error
	addFn        func(fd uintptr)
	ctlOp, ctlFD int
	ctlEvents    uint32
	ctlErr       error
	ctlFn        func(epfd uintptr)
}

// newParker starts l's parker, or returns nil if the system refuses (then
// idle connections stay on their goroutines).
func newParker(l *Listener) *parker {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil
	}
	ep := os.NewFile(uintptr(fd), "fastpath-park-epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil
	}
	p := &parker{
		l:       l,
		after:   l.opts.ParkIdleAfter,
		ep:      ep,
		epRaw:   raw,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		release: newReleaser(l.opts.ParkReleaseWave),
	}
	p.addFn, p.ctlFn = p.addStep, p.ctlStep
	if f := l.opts.releaseFunc; f != nil {
		p.release.release = f
	}
	if d := l.opts.releaseEvery; d > 0 {
		p.release.minInterval = d
	}
	// Is the epoll instance itself in the netpoller (only then does it
	// take deadlines)? Else the wait below would fail at once.
	if err := ep.SetReadDeadline(time.Time{}); err != nil {
		ep.Close()
		return nil
	}
	go p.waitEvents()
	go p.runTimer()
	return p
}

// minParkIdle is the shortest idle timeout for which connections are
// parked: one waiting at most 2*after before its kick must still have a
// fair part of its wait ahead when it parks.
func (p *parker) minParkIdle() time.Duration { return 4 * p.after }

// mayPark returns what link.idle says while c waits for its next request
// and may be parked, 0 if it may not (no parker, or an idle timeout too
// short to be worth it).
func (c *conn) mayPark() int64 {
	p := c.l.parker
	if p == nil {
		return 0
	}
	if c.resumed {
		// Woken from parking, and waiting again (epoll's wakeup was
		// stale): idle since it first waited.
		c.resumed = false
		return c.lastWait
	}
	if t := c.l.opts.IdleTimeout; t > 0 && t < p.minParkIdle() {
		return 0
	}
	if !c.rdIdle && !c.rd.IsZero() {
		return 0 // a header deadline, not an idle one
	}
	if since := c.now.UnixNano(); since > 0 {
		return since
	}
	return 1
}

// parkAtOnce says whether c, about to wait for its next request since
// since (mayPark), parks as soon as the wait would block: when many
// connections are open (Options.ParkAtOnceAbove), unless its previous
// request came less than ParkIdleAfter/2 before this one. Such a busy
// client (a benchmark, a page loading its assets) likely sends the next
// one soon: it waits on its goroutine, and is kicked like any other if
// it does not.
func (c *conn) parkAtOnce(since int64) bool {
	prev := c.lastWait
	c.lastWait = since
	return since-prev >= int64(c.l.parker.after/2) && c.l.crowded()
}

// park hands c's connection to the parker; false if it cannot (the
// listener is closing, or epoll refused). c itself then serves others
// (run gives it to Listener.spareConn).
func (c *conn) park(atOnce bool) bool {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing.Load() || l.parker.stopped || l.parker.add(c.link) != nil {
		return false
	}
	if atOnce {
		l.parker.parksAtOnce++
	}
	return true
}

// add registers lk with the epoll instance and its deadline with the
// timer. Under l.mu. The socket is registered as Go has it; a connection
// that stays parked long lets go of it later (detachLongParked).
func (p *parker) add(lk *link) error {
	p.addLink, p.addErr = lk, nil
	err := lk.raw.Control(p.addFn)
	p.addLink = nil
	if err == nil {
		err = p.addErr
	}
	if err != nil {
		return fmt.Errorf("fastpath: parking a connection: %w", err)
	}
	lk.polled = true
	lk.parkedAt = instantOf(time.Now())
	p.byFD.put(lk.fd, lk)
	p.parks++
	if !lk.rd.IsZero() {
		heap.Push(&p.heap, lk)
		if lk.heapAt == 0 && (p.sleepsTo.IsZero() || lk.rd.Time().Before(p.sleepsTo)) {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// addStep registers the socket fd of p.addLink (add's Control callback).
func (p *parker) addStep(fd uintptr) {
	lk := p.addLink
	op := syscall.EPOLL_CTL_MOD
	if !lk.polled {
		op = syscall.EPOLL_CTL_ADD
	}
	p.addErr = p.ctl(op, int(fd), syscall.EPOLLIN|syscall.EPOLLRDHUP|epollOneShot)
	lk.fd = int32(fd)
}

// epollOneShot is EPOLLONESHOT (the syscall package's constant is
// negative, for historical reasons).
const epollOneShot = 1 << 30

// take removes lk from the parked connections. Under l.mu.
func (p *parker) take(lk *link) {
	p.byFD.remove(lk.fd)
	if lk.heapAt >= 0 {
		heap.Remove(&p.heap, int(lk.heapAt))
	}
}

// takeAll removes every parked connection and stops parking. Under l.mu.
func (p *parker) takeAll() []*link {
	all := make([]*link, 0, p.byFD.n)
	for _, lk := range p.byFD.links {
		if lk != nil {
			all = append(all, lk)
		}
	}
	for _, lk := range all {
		p.take(lk)
	}
	p.stopped = true
	return all
}

// stop ends the parker's goroutines and closes its epoll instance.
func (p *parker) stop() {
	p.stopOnce.Do(func() {
		close(p.done)
		p.ep.Close()
	})
}

// waitEvents wakes parked connections whose socket became readable.
func (p *parker) waitEvents() {
	events := make([]syscall.EpollEvent, 128)
	var ready []*conn
	for {
		n := 0
		err := p.epRaw.Read(func(epfd uintptr) bool {
			for {
				k, err := syscall.EpollWait(int(epfd), events, 0)
				if err == syscall.EINTR {
					continue
				}
				if k > 0 {
					n = k
					return true
				}
				return false // nothing yet: wait for the netpoller
			}
		})
		if err != nil {
			return // the epoll instance is closed: the listener is
		}
		l := p.l
		l.mu.Lock()
		for _, ev := range events[:n] {
			// A descriptor not parked (any more) is a stale event: its
			// connection woke or closed meanwhile.
			if lk := p.byFD.get(ev.Fd); lk != nil {
				p.take(lk)
				ready = append(ready, l.connFor(lk))
			}
		}
		l.mu.Unlock()
		for i, c := range ready {
			l.dispatch(job{c: c, resume: true})
			ready[i] = nil
		}
		ready = ready[:0]
	}
}

// resume serves a parked connection whose next request arrived (or
// whose client left: the read says so).
func (l *Listener) resume(c *conn) {
	lk := c.link
	if lk.detached {
		_ = l.parker.attach(lk) // failed: the stand-in's read fails, and run closes
		c.src.nc = lk.nc
	}
	c.now = c.clk.now()
	// The kick moved the read deadline to the past. Restored, it must
	// not hide Close's (which comes after closing is set): closing is
	// checked after.
	_ = lk.nc.SetReadDeadline(lk.rd.Time())
	if l.closing.Load() {
		c.run(false, false) // closes it at once, as an idle connection
		return
	}
	c.resumed = true
	c.run(false, true)
}

// runTimer kicks connections idle long enough into parking, and closes
// parked ones whose idle deadline passed.
func (p *parker) runTimer() {
	l := p.l
	t := time.NewTimer(p.after)
	defer t.Stop()
	nextKick := time.Now().Add(p.after)
	var expired []*link
	for {
		select {
		case <-p.done:
			return
		case <-p.wake:
		case <-t.C:
		}
		now := time.Now()
		l.mu.Lock()
		release := false
		if !now.Before(nextKick) {
			p.kick(now)
			nextKick = now.Add(p.after)
			p.detachLongParked(now)
			// A wave of detaching frees memory too.
			release = p.release.due(now, p.parks+p.detaches)
		}
		for len(p.heap) > 0 && p.heap[0].rd <= instantOf(now) {
			lk := p.heap[0]
			p.take(lk)
			expired = append(expired, lk)
		}
		next := nextKick
		if len(p.heap) > 0 && p.heap[0].rd.Time().Before(next) {
			next = p.heap[0].rd.Time()
		}
		p.sleepsTo = next
		l.mu.Unlock()
		for i, lk := range expired {
			p.closeParked(lk) // the idle timeout, as on a goroutine
			l.remove(lk)
			expired[i] = nil
		}
		expired = expired[:0]
		if release {
			p.release.start()
		}
		t.Reset(next.Sub(now)) // Go >= 1.23: no stale tick after Reset
	}
}

// kick asks the connections idle for at least p.after to park: moving
// the read deadline to the past wakes their wait (idle.go), which sees
// it was kicked. Under l.mu, which park takes too: the deadline is moved
// before the connection parks (and restores it when it wakes).
func (p *parker) kick(now time.Time) {
	limit := now.Add(-p.after).UnixNano()
	past := time.Unix(1, 0)
	for lk := range p.l.conns {
		if s := lk.idle.Load(); s > 0 && s <= limit && lk.idle.CompareAndSwap(s, kicked) {
			_ = lk.nc.SetReadDeadline(past)
		}
	}
}

// parkedTable holds the parked connections by descriptor, in a slice
// indexed by its number: the kernel hands out the lowest free number, so
// the slice is dense and costs 8 bytes per connection, a map several
// times that (idle connections cost little more than their bookkeeping).
type parkedTable struct {
	links []*link
	n     int // the links that are not nil
}

func (t *parkedTable) get(fd int32) *link {
	if fd < 0 || int(fd) >= len(t.links) {
		return nil
	}
	return t.links[fd]
}

func (t *parkedTable) put(fd int32, lk *link) {
	if int(fd) >= len(t.links) {
		grown := make([]*link, max(int(fd)+1, 2*len(t.links), 64))
		copy(grown, t.links)
		t.links = grown
	}
	if t.links[fd] == nil {
		t.n++
	}
	t.links[fd] = lk
}

func (t *parkedTable) remove(fd int32) {
	if t.get(fd) != nil {
		t.links[fd] = nil
		t.n--
	}
}

// deadlineHeap orders parked connections by read deadline.
type deadlineHeap []*link

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].rd < h[j].rd }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapAt, h[j].heapAt = int32(i), int32(j)
}
func (h *deadlineHeap) Push(x any) {
	lk := x.(*link)
	lk.heapAt = int32(len(*h))
	*h = append(*h, lk)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	lk := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	lk.heapAt = -1
	return lk
}
