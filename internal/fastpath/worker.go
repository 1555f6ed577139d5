package fastpath

import (
	"runtime"
	"time"
)

// A goroutine that has served a connection stays a moment to serve the
// next one the accept loop (or the parker) has, instead of ending: a new
// goroutine starts with a small stack that a request then grows, copying
// it (runtime.morestack was 5% of the CPU with a new connection per
// request). A worker waits workerLinger for its next connection, then
// ends: an idle server keeps no workers, and a busy one keeps the ones it
// uses.
const workerLinger = 100 * time.Millisecond

// job is a connection for a worker: a new one (serve), or a parked one
// whose next request arrived (resume).
type job struct {
	c      *conn
	resume bool
}

// dispatch hands j to a waiting worker, or starts one.
func (l *Listener) dispatch(j job) {
	select {
	case l.jobs <- j:
	default:
		go l.work(j)
		// Let the new worker run now. On a busy core the caller (the
		// accept loop, the parker) would otherwise go on, and a burst
		// of connections would start a goroutine each before any of
		// them ran: hundreds of stacks at once, and as many goroutine
		// records, which the runtime keeps for good. Run at once, a
		// worker serves the request its connection came with, and then
		// waits for the next job, which the next dispatch hands it.
		runtime.Gosched()
	}
}

// work runs jobs until none comes for workerLinger or the listener ends.
func (l *Listener) work(j job) {
	var t *time.Timer
	for {
		if j.resume {
			l.resume(j.c)
		} else {
			j.c.serve()
		}
		j = job{}
		if t == nil {
			t = time.NewTimer(workerLinger)
		} else {
			t.Reset(workerLinger)
		}
		select {
		case j = <-l.jobs:
			t.Stop()
		case <-t.C:
			return
		case <-l.done:
			t.Stop()
			return
		}
	}
}
