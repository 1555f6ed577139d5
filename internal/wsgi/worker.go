package wsgi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errStopped is returned by start when the pool is closing.
var errStopped = errors.New("wsgi pool is closing")

// worker is one slot of the pool: a socket path and, at any time, at most
// one running process (a proc). A slot's process is replaced when it dies.
type worker struct {
	id        int
	sock      string
	log       *slog.Logger
	transport *http.Transport
	cur       *proc // guarded by Pool.mu
	failing   bool  // its last start failed; owned by its supervisor
}

// proc is one incarnation of a worker: a Python process in its own process
// group. The pool's idle channel holds a *proc while it waits for a request;
// a proc whose process has exited is stale and is dropped when taken.
type proc struct {
	w     *worker
	cmd   *exec.Cmd
	pid   int
	ready time.Time
	done  chan struct{} // closed once the process has exited and been reaped
	idle  time.Time     // when it last became idle; owned by whoever holds it

	killReason atomic.Pointer[string] // set when portico kills it on purpose
}

func (pr *proc) alive() bool {
	select {
	case <-pr.done:
		return false
	default:
		return true
	}
}

// kill ends the process and everything it started (its process group) with
// SIGKILL. reason is logged when the supervisor sees the exit.
func (pr *proc) kill(reason string) {
	pr.killReason.CompareAndSwap(nil, &reason)
	if pr.alive() {
		_ = syscall.Kill(-pr.pid, syscall.SIGKILL)
	}
}

func (pr *proc) signal(sig syscall.Signal) {
	if pr.alive() {
		_ = syscall.Kill(-pr.pid, sig)
	}
}

func newWorker(id int, sock string, log *slog.Logger) *worker {
	w := &worker{id: id, sock: sock, log: log.With("worker", id)}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	w.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, "unix", sock)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		// A sync worker serves one request per connection (as gunicorn's
		// sync workers do): no idle connection can ever sit between a
		// request and the worker it was meant for.
		DisableKeepAlives:  true,
		DisableCompression: true,
		MaxConnsPerHost:    1,
	}
	return w
}

// dialError marks a failure to connect to a worker's socket: the request
// never reached the app, so it is safe to send it to another worker.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect to worker: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// start runs a new process for slot w and waits until the app is imported
// and the worker listens (the adapter writes "ready" on fd 3), or until it
// fails (the adapter writes "error REASON" and exits), or startTimeout.
func (p *Pool) start(w *worker) (*proc, error) {
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()

	cmd := exec.Command(p.python, p.adapter, w.sock, p.cfg.App, p.cfg.Dir)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.ExtraFiles = []*os.File{statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the spawner adds Pdeathsig
	stdout := &lineLogger{level: slog.LevelInfo, stream: "stdout"}
	stderr := &lineLogger{level: slog.LevelWarn, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A grandchild holding stdout/stderr open must not block Wait forever.
	cmd.WaitDelay = 2 * time.Second

	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		statusW.Close()
		return nil, errStopped
	}
	err = p.spawn.start(cmd)
	var pr *proc
	if err == nil {
		pr = &proc{w: w, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
		w.cur = pr
	}
	p.mu.Unlock()
	statusW.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", p.python, err)
	}
	log := w.log.With("pid", pr.pid)
	stdout.setLogger(log)
	stderr.setLogger(log)

	go func() {
		_ = cmd.Wait()
		stdout.flush()
		stderr.flush()
		// Whatever the app left behind in the group goes too.
		_ = syscall.Kill(-pr.pid, syscall.SIGKILL)
		close(pr.done)
	}()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(statusR).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	timer := time.NewTimer(p.startTimeout)
	defer timer.Stop()
	// What the worker printed while it started is held until it is ready
	// (then logged) or has failed: when all workers of a new pool fail
	// alike, one traceback in the log is enough.
	failed := func() {
		show := p.running.Load() || !p.startErrShown.Swap(true)
		stdout.release(show)
		stderr.release(show)
	}
	select {
	case line := <-lines:
		if strings.HasPrefix(line, "ready") {
			pr.ready = time.Now()
			stdout.release(true)
			stderr.release(true)
			return pr, nil
		}
		pr.kill("failed to start")
		waitDone(pr, 5*time.Second)
		defer failed()
		if reason, ok := strings.CutPrefix(line, "error "); ok {
			return nil, errors.New(reason)
		}
		// The process died before the adapter could say why (killed,
		// interpreter too old, adapter unreadable...).
		reason := "worker exited before it was ready"
		if st := cmd.ProcessState; st != nil {
			reason = "worker " + st.String() + " before it was ready"
		}
		if last := stderr.lastLine(); last != "" {
			reason += ": " + last
		}
		return nil, errors.New(reason)
	case <-timer.C:
		defer failed()
		pr.kill("start timeout")
		waitDone(pr, 5*time.Second)
		return nil, fmt.Errorf("worker not ready after %s (is the app's import stuck?)", p.startTimeout)
	case <-p.stop:
		defer failed()
		pr.kill("pool closing")
		waitDone(pr, 5*time.Second)
		return nil, errStopped
	}
}

func waitDone(pr *proc, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-pr.done:
	case <-t.C:
	}
}

// Restart backoff: a worker that keeps dying soon after it starts is
// restarted after 100ms, 200ms, ... up to maxBackoff; one that lived for
// stableAfter, or that portico killed itself (timeout), at once.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 10 * time.Second
	stableAfter = 10 * time.Second
)

func backoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := minBackoff
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// supervise keeps slot w running until the pool closes: it waits for the
// current process to exit, logs why, and starts a new one (with backoff).
// Requests meanwhile go to the other workers.
func (p *Pool) supervise(w *worker, pr *proc) {
	defer p.supervisors.Done()
	failures := 0
	for {
		if pr != nil {
			<-pr.done
			reason := pr.killReason.Load()
			lived := time.Since(pr.ready)
			switch {
			case p.isStopping():
				return
			case reason != nil:
				w.log.Warn("wsgi: worker killed, replacing it", "pid", pr.pid, "reason", *reason)
				failures = 0
			default:
				w.log.Error("wsgi: worker died, restarting it", "pid", pr.pid,
					"status", pr.cmd.ProcessState.String(), "uptime", lived.Round(time.Millisecond))
				if lived >= stableAfter {
					failures = 0
				}
				failures++
			}
		}
		if d := backoff(failures); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-p.stop:
				t.Stop()
				return
			}
		}
		np, err := p.start(w)
		if errors.Is(err, errStopped) || p.isStopping() {
			if np != nil {
				np.kill("pool closing")
				<-np.done
			}
			return
		}
		if err != nil {
			failures++
			if !w.failing {
				w.failing = true
				p.failing.Add(1)
			}
			w.log.Error("wsgi: worker failed to start", "app", p.cfg.App, "err", err,
				"retry_in", backoff(failures))
			pr = nil
			continue
		}
		if w.failing {
			w.failing = false
			p.failing.Add(-1)
		}
		p.restarts.Add(1)
		w.log.Info("wsgi: worker started", "pid", np.pid)
		pr = np
		p.release(pr)
	}
}

// lineLogger is a process's stdout or stderr: each line becomes one log
// record tagged with the worker and pid. Overlong lines are split. Lines
// are held (up to maxHeld) until release says whether to log them.
type lineLogger struct {
	level  slog.Level
	stream string

	mu       sync.Mutex
	log      *slog.Logger
	buf      []byte
	last     string
	held     [][]byte
	released bool
	discard  bool
}

const (
	maxLogLine = 16 << 10
	maxHeld    = 200
)

func (l *lineLogger) setLogger(log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = log
}

// release logs the held lines (show) or drops them, and logs every line
// from now on.
func (l *lineLogger) release(show bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if show {
		for _, b := range l.held {
			l.out(b)
		}
	}
	l.held = nil
	l.released = true
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.buf = append(l.buf, b...)
			if len(l.buf) >= maxLogLine {
				l.emit()
			}
			break
		}
		l.buf = append(l.buf, b[:i]...)
		l.emit()
		b = b[i+1:]
	}
	return n, nil
}

func (l *lineLogger) emit() {
	line := bytes.TrimRight(l.buf, "\r")
	l.buf = l.buf[:0]
	if t := bytes.TrimSpace(line); len(t) > 0 {
		l.last = string(t)
	}
	if !l.released && l.log == nil || !l.released && len(l.held) < maxHeld {
		l.held = append(l.held, bytes.Clone(line))
		return
	}
	l.out(line)
}

func (l *lineLogger) out(line []byte) {
	if l.log != nil {
		l.log.Log(context.Background(), l.level, "wsgi worker "+l.stream, "line", string(line))
	}
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit()
	}
}

func (l *lineLogger) lastLine() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Idle workers are checked every pingEvery: a worker that does not answer
// a ping (the adapter replies without calling the app) within pingTimeout
// is frozen (a stopped process, a deadlocked interpreter) and is replaced
// before a client's request finds it.
const (
	defaultPingEvery = 10 * time.Second
	pingTimeout      = 2 * time.Second
)

// pinger checks idle workers until the pool stops.
func (p *Pool) pinger() {
	defer p.supervisors.Done()
	for {
		t := time.NewTimer(min(time.Duration(p.pingEvery.Load()), time.Second))
		select {
		case <-t.C:
		case <-p.stop:
			t.Stop()
			return
		}
		every := time.Duration(p.pingEvery.Load())
		// The front of the idle queue is the longest idle worker; one
		// that was busy lately has shown it is alive.
		for range len(p.workers) {
			var pr *proc
			select {
			case pr = <-p.idle:
			default:
			}
			if pr == nil {
				break
			}
			if !pr.alive() {
				continue
			}
			if time.Since(pr.idle) < every {
				p.release(pr)
				break
			}
			if err := p.ping(pr); err != nil {
				if p.isStopping() {
					return
				}
				p.log.Warn("wsgi: idle worker does not answer; replacing it", "worker", pr.w.id, "pid", pr.pid, "err", err)
				pr.kill("frozen: no answer to a ping within " + pingTimeout.String())
				continue
			}
			p.release(pr)
		}
	}
}

func (p *Pool) ping(pr *proc) error {
	ctx, cancel := context.WithTimeout(context.Background(), min(pingTimeout, p.timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://wsgi/", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Portico-Ping", "1")
	req.Header["User-Agent"] = []string{""}
	resp, err := pr.w.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("ping answered %s", resp.Status)
	}
	return nil
}
