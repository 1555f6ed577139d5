package wsgi

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Why a worker process was replaced (Stats.Recycles, the metrics' cause
// label).
const (
	causeMaxRequests = "max_requests" // served cfg.MaxRequests (+ jitter)
	causeMaxMemory   = "max_memory"   // its RSS passed cfg.MaxMemory
	causeDied        = "died"         // exited on its own, or stopped listening
	causeFrozen      = "frozen"       // no answer within the timeout, or to a ping
)

// recycleCauses lists the causes in a fixed order (Stats, metrics).
var recycleCauses = [...]string{causeMaxRequests, causeMaxMemory, causeDied, causeFrozen}

func causeIndex(cause string) int {
	for i, c := range recycleCauses {
		if c == cause {
			return i
		}
	}
	return -1
}

func (p *Pool) countRecycle(cause string) {
	if i := causeIndex(cause); i >= 0 {
		p.recycles[i].Add(1)
	}
}

// requestLimit draws a new process's request limit: cfg.MaxRequests plus
// a random 0..MaxRequestsJitter (gunicorn's rule), so that workers started
// together do not all recycle at the same moment. 0: no limit.
func (p *Pool) requestLimit() int {
	if p.cfg.MaxRequests <= 0 {
		return 0
	}
	return p.cfg.MaxRequests + rand.IntN(p.cfg.MaxRequestsJitter+1)
}

// finished settles pr after it has answered a request: it counts the
// request, asks for a recycle when pr has reached a limit, and makes pr
// available again (it serves on until its replacement is ready).
func (p *Pool) finished(pr *proc) {
	pr.served++
	switch {
	case pr.limit > 0 && pr.served >= pr.limit:
		p.askRecycle(pr, causeMaxRequests)
	case p.cfg.MaxMemory > 0 && !pr.asked.Load():
		if rss, err := residentBytes(pr.pid); err == nil && rss > int64(p.cfg.MaxMemory) {
			pr.w.log.Info("wsgi: worker passed max_memory", "pid", pr.pid, "rss", rss,
				"max_memory", int64(p.cfg.MaxMemory), "requests", pr.served)
			p.askRecycle(pr, causeMaxMemory)
		}
	}
	p.release(pr)
}

// askRecycle tells pr's supervisor, once, to replace it.
func (p *Pool) askRecycle(pr *proc, cause string) {
	if !pr.asked.CompareAndSwap(false, true) {
		return
	}
	select {
	case pr.w.recycle <- cause:
	default: // one is pending already
	}
}

// residentBytes reads a process's resident set size from /proc/PID/statm
// (its second field, in pages). Only the worker itself counts, not the
// processes it started.
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, syscall.EINVAL
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}

// replace starts old's replacement while old serves on. Once the new
// process is ready (imported, listening), it takes old's place and old
// retires: it takes no new request, finishes the one it may hold, and
// gets SIGTERM. No request ever waits for a cold worker. On error old
// is left serving.
func (p *Pool) replace(w *worker, old *proc, cause string) (*proc, error) {
	np, err := p.start(w)
	if err != nil {
		return nil, err
	}
	if p.isStopping() {
		np.kill("pool closing")
		<-np.done
		return nil, errStopped
	}
	p.mu.Lock()
	w.cur = np
	old.state.Store(stateRetiring)
	p.mu.Unlock()
	p.countRecycle(cause)
	p.restarts.Add(1)
	w.log.Info("wsgi: worker ready", "pid", np.pid, "replaces", old.pid, "cause", cause)
	if !old.alive() && old.killReason.Load() == nil {
		w.log.Error("wsgi: worker died while its replacement started", "pid", old.pid,
			"status", old.cmd.ProcessState.String())
	}
	p.release(np)
	p.pluck(old)
	return np, nil
}

// pluck retires old if it is waiting in the idle queue. If a request has
// it, release retires it when that request is done.
func (p *Pool) pluck(old *proc) {
	for range len(p.idle) {
		var pr *proc
		select {
		case pr = <-p.idle:
		default:
			return
		}
		if pr == old {
			p.retire(old)
			return
		}
		select {
		case p.idle <- pr:
		default: // cannot happen: the queue holds a token per live process
		}
	}
}

// retireGrace bounds how long a retired worker may take to exit after
// SIGTERM (it holds no request) before it is killed.
const retireGrace = 5 * time.Second

// retire ends a replaced, idle worker: SIGTERM, SIGKILL after retireGrace.
func (p *Pool) retire(pr *proc) {
	if !pr.retired.CompareAndSwap(false, true) {
		return
	}
	pr.w.log.Info("wsgi: worker retiring", "pid", pr.pid, "requests", pr.served)
	pr.signal(syscall.SIGTERM)
	time.AfterFunc(retireGrace, func() {
		pr.kill("did not exit within " + retireGrace.String() + " of SIGTERM after it was replaced")
	})
}
