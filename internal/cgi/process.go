package cgi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Why a script was stopped before it exited by itself.
const (
	stopNone       int32 = iota
	stopTimeout          // wall-clock timeout
	stopGone             // the client went away (request context done)
	stopShutdown         // Handler.Close
	stopBodyLarge        // the request body passed the server's limit
	stopBodyError        // reading the request body failed
	stopBadOutput        // malformed header block or a write to the client failed
	stopRedirected       // local redirect answered; body not wanted
)

// proc is one running script: its process group, its pipes and the
// goroutines that feed and watch it. Its supervisor goroutine is the only
// one that signals the group, and it finishes only when the script is
// reaped and its group is gone (or was sent SIGKILL).
type proc struct {
	h      *Handler
	cmd    *exec.Cmd
	pid    int       // the script's pid
	pgid   int       // its process group (its own pid)
	token  string    // tokenEnv=value, in the environment of all it starts
	cgroup runCgroup // the run's own cgroup, path "" without one (cgroup.go)
	// signalled are the processes outside the group that were sent a
	// signal (only the supervisor goroutine uses it).
	signalled []int
	script    string

	stdout *os.File // read end of the script's stdout
	stderr *os.File // read end of the script's stderr

	exited  chan struct{} // closed once the script is reaped
	waitErr error         // cmd.Wait's result, valid after exited

	stop       chan int32    // asks the supervisor to stop the script (buffered)
	reason     atomic.Int32  // why it was stopped, stopNone if it was not
	stdoutDone chan struct{} // closed by ServeHTTP when it stopped reading stdout
	stderrDone chan struct{} // closed by the stderr logger
	done       chan struct{} // closed by the supervisor when all is over

	closeOut, closeErr sync.Once
}

// requestStop asks the supervisor to stop the script (the first reason wins).
func (p *proc) requestStop(why int32) {
	select {
	case p.stop <- why:
	default:
	}
}

func (p *proc) closeStdout() { p.closeOut.Do(func() { p.stdout.Close() }) }
func (p *proc) closeStderr() { p.closeErr.Do(func() { p.stderr.Close() }) }

// supervise waits for the script to exit, or for a reason to stop it: the
// timeout, the client going away, Close, or a request from ServeHTTP. Then
// it makes sure nothing the script started is left (see descendants.go):
// SIGTERM, a grace period (so shell traps run), SIGKILL. Finally it
// bounds the wait for stdout and stderr to close, which a process that
// could not be attributed to the run could hold open forever.
func (p *proc) supervise(reqDone <-chan struct{}, timer *time.Timer) {
	defer close(p.done)
	defer timer.Stop()
	why := stopNone
	select {
	case <-p.exited:
	case <-timer.C:
		why = stopTimeout
		p.h.timeouts.Add(1)
	case <-reqDone:
		why = stopGone
	case <-p.h.closing:
		why = stopShutdown
	case why = <-p.stop:
	}
	if why != stopNone {
		p.reason.CompareAndSwap(stopNone, why)
		p.terminate()
	}
	p.h.running.Delete(p.pid)
	p.cleanUp(why != stopNone)
	if p.cgroup.path != "" {
		p.h.cg.release(p.cgroup)
	}

	limit := timer.C // a script that exited by itself: the rest of its time
	if why != stopNone {
		t := time.NewTimer(p.h.grace)
		defer t.Stop()
		limit = t.C
	}
	outDone, errDone, closing := p.stdoutDone, p.stderrDone, p.h.closing
	for outDone != nil || errDone != nil {
		select {
		case <-outDone:
			outDone = nil
		case <-errDone:
			errDone = nil
		case <-limit:
			p.closeStdout()
			p.closeStderr()
			limit = nil
		case <-closing:
			p.closeStdout()
			p.closeStderr()
			closing = nil
		}
	}
}

// feed copies the request body to the script's stdin as it arrives. A body
// over the server's limit (http.MaxBytesReader) or a failed read stops the
// script: it would otherwise act on a truncated body.
func (p *proc) feed(stdin *os.File, body io.Reader) {
	bufp := copyBufs.Get().(*[]byte)
	_, err := io.CopyBuffer(stdin, onlyReader{body}, *bufp)
	copyBufs.Put(bufp)
	var mbe *http.MaxBytesError
	switch {
	case err == nil, errors.Is(err, syscall.EPIPE), errors.Is(err, os.ErrClosed):
		// Done, or the script stopped reading (its choice).
	case errors.As(err, &mbe):
		p.requestStop(stopBodyLarge)
		<-p.exited // keep stdin open so the script cannot mistake a cut body for a whole one
	default:
		p.requestStop(stopBodyError)
		<-p.exited
	}
	stdin.Close()
}

// onlyReader hides a reader's WriterTo so io.CopyBuffer uses the buffer.
type onlyReader struct{ io.Reader }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// Bounds on what a script may put in the error log through stderr.
const (
	maxLogLine  = 2048 // bytes of one line kept
	logRate     = 50   // lines per second, sustained
	logBurst    = 200  // lines at once
	stderrChunk = 4096
)

// logStderr relays the script's stderr to the error log, one record per
// line, tagged with the script. Long lines are cut and lines beyond a rate
// are counted, not logged, so a script cannot flood the log; stderr is
// always drained so the script never blocks on it.
func (p *proc) logStderr() {
	defer close(p.stderrDone)
	br := bufio.NewReaderSize(p.stderr, stderrChunk)
	tokens := float64(logBurst)
	last := time.Now()
	dropped := 0
	truncated := false // inside the rest of a line already logged
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			full := err == nil
			if !truncated {
				now := time.Now()
				tokens += now.Sub(last).Seconds() * logRate
				last = now
				if tokens > logBurst {
					tokens = logBurst
				}
				if tokens >= 1 {
					tokens--
					text := line
					if full {
						text = text[:len(text)-1]
						if n := len(text); n > 0 && text[n-1] == '\r' {
							text = text[:n-1]
						}
					}
					cut := len(text) > maxLogLine || (!full && err == bufio.ErrBufferFull)
					if len(text) > maxLogLine {
						text = text[:maxLogLine]
					}
					attrs := []slog.Attr{slog.String("script", p.script), slog.String("line", string(text))}
					if cut {
						attrs = append(attrs, slog.Bool("truncated", true))
					}
					p.h.log.LogAttrs(context.Background(), slog.LevelWarn, "cgi stderr", attrs...)
				} else {
					dropped++
				}
			}
			truncated = !full && err == bufio.ErrBufferFull
		}
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	p.closeStderr()
	if dropped > 0 {
		p.h.log.Warn("cgi stderr lines dropped (rate limit)", "script", p.script, "dropped", dropped)
	}
}
