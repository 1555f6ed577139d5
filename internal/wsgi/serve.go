package wsgi

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"portico/internal/errorpage"
)

// ServeHTTP reads the request body, takes an idle worker and relays the
// request to it, streaming the response back.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		w.Header().Set("Retry-After", "1")
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return
	}
	defer p.leave()

	// The whole body first: a slow client must never hold a sync worker.
	body, err := readBody(r, p.dir)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			w.Header().Set("Connection", "close")
			errorpage.Write(w, r, http.StatusRequestEntityTooLarge)
		case r.Context().Err() != nil:
			// The client went away while sending.
		default:
			p.log.Warn("wsgi: reading request body", "path", r.URL.Path, "err", err)
			errorpage.Write(w, r, http.StatusBadRequest)
		}
		return
	}
	defer body.Close()

	retried := false
	for attempt := 0; attempt <= len(p.workers); attempt++ {
		pr, err := p.acquire(r.Context())
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			p.log.Warn("wsgi: no idle worker", "path", r.URL.Path, "err", err, "wait", time.Duration(p.queueWait.Load()))
			w.Header().Set("Retry-After", "1")
			errorpage.Write(w, r, http.StatusServiceUnavailable)
			return
		}
		switch p.relay(w, r, pr, body) {
		case done:
			return
		case notDelivered:
			continue // the app never saw it: another worker
		case workerDied:
			// The worker died while the app had the request (not a
			// timeout). Safe methods get one more try elsewhere, so a
			// crash or an outside kill does not drop them.
			if !retried && (r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions) {
				retried = true
				continue
			}
			errorpage.Write(w, r, http.StatusBadGateway)
			return
		}
	}
	errorpage.Write(w, r, http.StatusBadGateway)
}

type relayResult int

const (
	done         relayResult = iota // answered (or the client is gone)
	notDelivered                    // could not connect; nothing written
	workerDied                      // no response; nothing written
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relay sends r to worker pr and copies the answer to w. It owns pr: it
// returns it to the idle set, or kills it when it is frozen.
func (p *Pool) relay(w http.ResponseWriter, r *http.Request, pr *proc, body *reqBody) relayResult {
	// The worker's timer, not the client, decides when the app is cut
	// off: a client that leaves mid-request does not free a sync worker
	// that is still computing, so the worker stays taken until it answers.
	wd := newWatchdog(p.timeout, func() {
		p.timeouts.Add(1)
		pr.killAs(causeFrozen, "request exceeded timeout "+p.timeout.String()+": "+r.Method+" "+r.URL.Path)
		pr.closeConn()
	})
	defer wd.stop()

	ex, err := p.send(pr, r, body)
	if err != nil {
		timedOut := wd.stop()
		var ns *notSentError
		switch {
		case timedOut:
			p.log.Warn("wsgi: request timed out; worker killed and replaced",
				"worker", pr.w.id, "pid", pr.pid, "path", r.URL.Path, "timeout", p.timeout)
			errorpage.Write(w, r, http.StatusGatewayTimeout)
			return done
		case errors.As(err, &ns):
			p.log.Warn("wsgi: worker unreachable; trying another", "worker", pr.w.id, "pid", pr.pid, "err", err)
			// Usually it has just died and is about to be reaped; one that
			// lives on without listening is broken: replace it.
			if waitDone(pr, 100*time.Millisecond); pr.alive() {
				pr.killAs(causeDied, "unreachable: "+ns.Error())
			}
			return notDelivered
		default:
			p.log.Error("wsgi: worker failed during request", "worker", pr.w.id, "pid", pr.pid,
				"path", r.URL.Path, "err", err)
			// Give the supervisor a moment to see an exit, so the retry
			// does not pick a dying worker; a live one is reusable (its
			// connection has been dropped, the next request dials anew).
			waitDone(pr, 50*time.Millisecond)
			p.release(pr)
			return workerDied
		}
	}

	if ex.appError {
		// The app raised before it started its response; the traceback is
		// in the log. Answer with portico's own error page.
		_, err := io.Copy(io.Discard, ex)
		switch err := p.finishWorker(pr, wd, r, ex, err, false); err {
		case errStalled:
			errorpage.Write(w, r, http.StatusGatewayTimeout)
		default:
			errorpage.Write(w, r, http.StatusInternalServerError)
		}
		return done
	}

	h := w.Header()
	for k, vv := range ex.header {
		if responseHopByHop(k) || strings.HasPrefix(k, privatePrefix) {
			continue
		}
		h[k] = vv
	}

	// The response is read from the worker as fast as the app writes it,
	// whatever the client's speed, and the worker is released as soon as
	// the app is done: a slow reader never holds a sync worker (nginx's
	// proxy_buffering). A small sized response is read whole first.
	if ex.length >= 0 && ex.length <= spoolMem {
		body, err := io.ReadAll(io.LimitReader(ex, spoolMem+1))
		if err == nil && int64(len(body)) > spoolMem {
			err = ex.fail(errors.New("response longer than its Content-Length"))
		}
		if err == nil && !ex.settled {
			// The body is whole while the iterable's close() still runs in
			// the worker: the client need not wait for it, and the worker
			// is released once it is done, whatever the client's speed.
			settled := make(chan struct{})
			go func() {
				defer close(settled)
				_ = p.finishWorker(pr, wd, r, ex, nil, false)
			}()
			w.WriteHeader(ex.status)
			_, _ = w.Write(body)
			_ = http.NewResponseController(w).Flush()
			<-settled // bounded by the watchdog
			return done
		}
		switch err := p.finishWorker(pr, wd, r, ex, err, false); {
		case err == errStalled:
			clear(h)
			errorpage.Write(w, r, http.StatusGatewayTimeout)
			return done
		case err != nil:
			clear(h)
			errorpage.Write(w, r, http.StatusBadGateway)
			return done
		}
		w.WriteHeader(ex.status)
		_, _ = w.Write(body)
		return done
	}

	sp := &respSpool{dir: p.dir, wake: make(chan struct{}, 1)}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		var err error
		for {
			var n int
			n, err = ex.Read(*bp)
			if n > 0 {
				wd.reset() // progress: the worker is not frozen
				if perr := sp.put((*bp)[:n]); perr != nil {
					p.log.Error("wsgi: buffering response", "err", perr)
					err = ex.fail(perr)
					break
				}
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				break
			}
		}
		if err != nil || ex.settled {
			sp.finish(p.finishWorker(pr, wd, r, ex, err, sp.isAbandoned()))
			return
		}
		// The body is whole; close() still runs in the worker: the
		// client need not wait for it.
		sp.finish(nil)
		_ = p.finishWorker(pr, wd, r, ex, nil, sp.isAbandoned())
	}()
	defer func() {
		<-produced // bounded: abandon closes the connection, the watchdog kills the worker
		sp.close()
	}()

	rc := http.NewResponseController(w)
	w.WriteHeader(ex.status)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for {
		n, err := sp.take(*bp)
		if n > 0 {
			if _, werr := w.Write((*bp)[:n]); werr != nil {
				sp.abandon(ex)
				return done
			}
			continue
		}
		if err == io.EOF {
			_ = rc.Flush() // the end goes out before the worker settles
			return done
		}
		if err != nil {
			<-produced
			// The client must not take a truncated body for a whole one.
			panic(http.ErrAbortHandler)
		}
		// Everything the app has produced so far goes out now (streaming).
		_ = rc.Flush()
		select {
		case <-sp.wake:
		case <-r.Context().Done():
			// The client left: dropping the worker's connection makes the
			// adapter's next write fail, which ends the app's iterable
			// (its close() is called).
			sp.abandon(ex)
			return done
		}
	}
}

var errStalled = errors.New("worker stalled past the timeout")

// finishWorker settles pr after its response body was read: released to
// the pool once the worker has finished the request (its S frame, when
// close() ran after the body), or not when the watchdog killed it. It
// returns nil when the body is complete, errStalled when the watchdog
// fired, or readErr.
func (p *Pool) finishWorker(pr *proc, wd *watchdog, r *http.Request, ex *exchange, readErr error, abandoned bool) error {
	if readErr == nil || readErr == errAppCut {
		if err := ex.settle(); err != nil && !wd.hasFired() {
			p.log.Warn("wsgi: worker stream out of step after a response; connection dropped",
				"worker", pr.w.id, "pid", pr.pid, "path", r.URL.Path, "err", err)
		}
	} else {
		ex.waitWriter() // the connection is dropped: the writer ends
	}
	if wd.stop() {
		p.log.Warn("wsgi: response stalled past timeout; worker killed and replaced",
			"worker", pr.w.id, "pid", pr.pid, "path", r.URL.Path, "timeout", p.timeout)
		return errStalled
	}
	if readErr != nil && !abandoned {
		p.log.Warn("wsgi: response cut short by the worker", "worker", pr.w.id, "pid", pr.pid,
			"path", r.URL.Path, "err", readErr)
		if readErr != errAppCut {
			waitDone(pr, 50*time.Millisecond) // do not hand out a dying worker
		}
	}
	ex.release()
	p.finished(pr)
	return readErr
}
