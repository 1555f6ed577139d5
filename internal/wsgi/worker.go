package wsgi

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

// worker is one slot of the pool: at any time one serving process (a proc)
// and, while it is being recycled, its warming replacement. A slot's
// process is replaced when it dies, freezes or reaches a limit.
type worker struct {
	id      int
	sock    string // the first process's socket; later ones add "-N"
	log     *slog.Logger
	cur     *proc // the serving process; guarded by Pool.mu
	failing bool  // its last start failed; owned by its supervisor
	gen     int   // processes started so far; owned by its supervisor
	// recycle carries the cause (causeMaxRequests, causeMaxMemory) when
	// the serving process has reached a limit; the supervisor then starts
	// its replacement while it keeps serving.
	recycle chan string
}

// proc is one incarnation of a worker: a Python process in its own process
// group. The pool's idle channel holds a *proc while it waits for a request;
// a proc whose process has exited is stale and is dropped when taken.
type proc struct {
	w      *worker
	cmd    *exec.Cmd
	pid    int
	sock   string
	ready  time.Time
	done   chan struct{} // closed once the process has exited and been reaped
	idle   time.Time     // when it last became idle; owned by whoever holds it
	served int           // requests served; owned by whoever holds it
	limit  int           // recycle after this many requests (0: never)
	lastID uint64        // the id of its last exchange; owned by whoever holds it

	connMu sync.Mutex
	conn   *workerConn // portico's connection to it, kept across requests (conn.go)

	state      atomic.Int32           // stateStarting, stateServing, stateRetiring
	asked      atomic.Bool            // a recycle was asked for
	retired    atomic.Bool            // retire has run
	killReason atomic.Pointer[string] // set when portico kills it on purpose
	killCause  atomic.Pointer[string] // the recycle cause of that kill
}

// Process states, for Stats.
const (
	stateStarting int32 = iota // importing the app
	stateServing               // idle or busy
	stateRetiring              // replaced: takes no new request, then leaves
)

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
func (pr *proc) kill(reason string) { pr.killAs("", reason) }

// killAs is kill that also counts the replacement under cause
// (causeFrozen, causeDied; "" counts nothing).
func (pr *proc) killAs(cause, reason string) {
	if pr.killReason.CompareAndSwap(nil, &reason) && cause != "" {
		pr.killCause.Store(&cause)
	}
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
	return &worker{id: id, sock: sock, log: log.With("worker", id), recycle: make(chan string, 1)}
}

// nextSock names the socket of the slot's next process: a replacement
// listens while the process it replaces still does.
func (w *worker) nextSock() string {
	w.gen++
	if w.gen == 1 || !strings.HasSuffix(w.sock, ".sock") {
		return w.sock
	}
	return fmt.Sprintf("%s-%d.sock", strings.TrimSuffix(w.sock, ".sock"), w.gen)
}

// start runs a new process for slot w and waits until the app is imported
// and the worker listens (the adapter writes "ready" on fd 3), or until it
// fails (the adapter writes "error REASON" and exits), or startTimeout.
func (p *Pool) start(w *worker) (*proc, error) {
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()

	sock := w.nextSock()
	cmd := exec.Command(p.python, p.adapter, sock, p.cfg.App, p.cfg.Dir)
	cmd.Dir = p.cfg.Dir
	cmd.Env = p.env
	cmd.ExtraFiles = []*os.File{statusW}
	// The spawner adds Pdeathsig, which Go sets after the credentials
	// change (a uid change would clear it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
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
		pr = &proc{w: w, cmd: cmd, pid: cmd.Process.Pid, sock: sock,
			done: make(chan struct{}), limit: p.requestLimit(),
			// Ids start anywhere: bytes that happen to look like a frame
			// will not also carry the id portico waits for.
			lastID: rand.Uint64()}
		if w.cur == nil || !w.cur.alive() {
			w.cur = pr // a replacement becomes cur once it is ready
		}
		if p.procs == nil {
			p.procs = map[*proc]struct{}{}
		}
		p.procs[pr] = struct{}{}
	}
	p.mu.Unlock()
	statusW.Close()
	if err != nil {
		if p.cred != nil {
			if d := unreachableBy(p.cfg.Dir, p.cred); d != "" {
				return nil, fmt.Errorf("start %s as user %s: %w (the user cannot enter %s)", p.python, p.cfg.User, err, d)
			}
			return nil, fmt.Errorf("start %s as user %s: %w", p.python, p.cfg.User, err)
		}
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
		p.mu.Lock()
		delete(p.procs, pr)
		p.mu.Unlock()
		close(pr.done)
		pr.closeConn()
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
			if p.cfg.Warmup != "" && sock != checkArg {
				p.warm(pr, log)
				if !pr.alive() {
					return nil, errors.New("worker exited during its warm-up request " + p.cfg.Warmup)
				}
			}
			pr.state.Store(stateServing)
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
// current process to exit, logs why, and starts a new one (with backoff);
// requests meanwhile go to the other workers. When the process asks to be
// recycled (a limit reached), the replacement is started first, while the
// old process serves on (recycle.go).
func (p *Pool) supervise(w *worker, pr *proc) {
	defer p.supervisors.Done()
	failures := 0
	var retry <-chan time.Time // a failed warm replacement is tried again
	pending := ""              // the cause of the recycle being retried
	for {
		if pr != nil {
			var cause string
			select {
			case <-pr.done:
			case cause = <-w.recycle:
			case <-retry:
				cause, retry = pending, nil
			}
			if cause != "" {
				np, err := p.replace(w, pr, cause)
				if err != nil {
					if errors.Is(err, errStopped) || p.isStopping() {
						return
					}
					failures++
					pending = cause
					retry = time.After(backoff(failures))
					w.log.Error("wsgi: replacement worker failed to start; the old one serves on",
						"pid", pr.pid, "cause", cause, "err", err, "retry_in", backoff(failures))
					continue
				}
				failures, pending, retry = 0, "", nil
				pr = np
				continue
			}
			reason := pr.killReason.Load()
			lived := time.Since(pr.ready)
			switch {
			case p.isStopping():
				return
			case reason != nil:
				w.log.Warn("wsgi: worker killed, replacing it", "pid", pr.pid, "reason", *reason)
				if c := pr.killCause.Load(); c != nil {
					p.countRecycle(*c)
				}
				failures = 0
			default:
				w.log.Error("wsgi: worker died, restarting it", "pid", pr.pid,
					"status", pr.cmd.ProcessState.String(), "uptime", lived.Round(time.Millisecond))
				p.countRecycle(causeDied)
				if lived >= stableAfter {
					failures = 0
				}
				failures++
			}
			retry, pending = nil, ""
			select {
			case <-w.recycle: // moot: that process is gone
			default:
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
			if !p.usable(pr) {
				continue // dead (its supervisor replaces it) or retired now
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
				pr.killAs(causeFrozen, "frozen: no answer to a ping within "+pingTimeout.String())
				continue
			}
			p.release(pr)
		}
	}
}

func (p *Pool) ping(pr *proc) error {
	return pr.ping(min(pingTimeout, p.timeout))
}
