// Package wsgi runs a Python WSGI app (PEP 3333) in a pool of supervised
// worker processes and serves HTTP requests with it.
//
// Each worker is a Python process running portico's bundled adapter
// (adapter.py, embedded in the binary): it imports the app, then serves
// portico on a private unix socket, one request at a time (a sync worker).
// portico keeps one connection open to each worker and speaks a compact
// framing on it (conn.go; the protocol is at the top of adapter.py): the
// environ is built here, the answer comes back as id-checked frames, and
// any frame out of step drops the connection, so bytes a worker left
// behind never reach a client.
// The Pool in front of the workers:
//
//   - starts all workers in parallel, and fails New with the app's own error
//     (ModuleNotFoundError, SyntaxError, missing callable) when the import
//     fails, within a bounded time;
//   - reads each request body completely before it takes a worker, so a slow
//     client never ties up a sync worker (the server's body limit applies);
//   - gives a request the next idle worker, or waits a bounded time for one
//     (then 503 with Retry-After);
//   - bounds each request with cfg.Timeout: a worker that has not answered,
//     or whose streamed answer has not progressed, within it is frozen; the
//     client gets 504 (or a cut response) and the worker's whole process
//     group is killed and replaced;
//   - restarts a worker that dies (with backoff when it keeps dying), while
//     the other workers serve; a request that could not reach a dead worker
//     goes to another one;
//   - recycles a worker after cfg.MaxRequests (plus jitter) requests or
//     when its RSS passes cfg.MaxMemory: its replacement is started, and
//     sent the cfg.Warmup request, while it serves on; only then does it
//     retire (recycle.go), so no request waits for a cold worker;
//   - runs the workers as cfg.User when portico is root, with cfg.Env added
//     to their environment;
//   - streams responses back as the app produces them;
//   - on Close, finishes the requests in flight, then SIGTERM, then SIGKILL
//     for each process group, and reaps every child;
//   - forks every worker from one locked thread with a parent-death signal
//     (spawn.go), so no worker outlives portico, even a SIGKILLed one.
//
// Provision validates and builds a pool without starting anything; Start
// runs the workers; Check (what `portico check` runs) imports the app once
// in one short-lived process instead.
//
// What Python cannot know (the client's address, the port the client
// connected to, the scheme, the route prefix) is put in the environ by the
// Pool (environ.go); X-Portico-* headers a client sends are dropped, and
// any an app sets are not passed on. Request headers that would be unsafe in an
// environ are dropped here: Proxy (httpoxy: HTTP_PROXY) and any name with
// "_" or another byte that is not a letter, digit or "-" (header aliasing:
// X_User and X-User would both be HTTP_X_USER).
package wsgi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"portico/internal/clientip"
	"portico/internal/config"
)

//go:embed adapter.py
var adapterSource []byte

// Defaults for fields a caller may leave zero (config.Load fills them too).
const (
	defaultWorkers = 2
	defaultPython  = "python3"
	defaultTimeout = 30 * time.Second
)

// startTimeout bounds a worker's start: the app's import and the adapter's
// "ready". A slow import (big frameworks) fits easily; a hung one fails.
var startTimeout = 60 * time.Second

// Options are what the server passes besides the route's config.
type Options struct {
	// Logger receives worker output (one record per line, tagged with the
	// worker and its pid), restarts and request failures. Nil: discard.
	Logger *slog.Logger
	// Prefix is the route's path prefix without its trailing slash ("/app"
	// for a route at "/app/"). It becomes SCRIPT_NAME and the rest of the
	// path PATH_INFO. The request reaches ServeHTTP with its full path.
	Prefix string
	// Clients decides REMOTE_ADDR (X-Forwarded-For through trusted
	// proxies); nil: the peer.
	Clients *clientip.Resolver
}

// Pool is an http.Handler serving a WSGI app from supervised workers.
type Pool struct {
	clients *clientip.Resolver
	cfg     config.WSGI
	log     *slog.Logger
	prefix  string
	python  string // resolved interpreter path
	dir     string // private temp folder (made by Start): adapter.py, sockets, spooled bodies
	adapter string
	timeout time.Duration

	env     []string            // the workers' environment
	cred    *syscall.Credential // cfg.User's, when portico runs as root
	workers []*worker
	idle    chan *proc         // idle workers, in the order they became idle
	procs   map[*proc]struct{} // every live process (guarded by mu)

	// Tunables, set in New (tests may change them before serving).
	queueWait    atomic.Int64 // how long a request waits for an idle worker (ns)
	maxWaiting   int64        // requests waiting beyond this get 503 at once
	startTimeout time.Duration

	waiting   atomic.Int64
	failing   atomic.Int64 // slots whose last start attempt failed
	running   atomic.Bool  // New has returned the pool
	pingEvery atomic.Int64 // idle workers are pinged this often (ns)
	restarts  atomic.Uint64
	timeouts  atomic.Uint64
	recycles  [len(recycleCauses)]atomic.Uint64
	// startErrShown: one failed start's output was logged during New.
	startErrShown atomic.Bool
	supervisors   sync.WaitGroup
	stop          chan struct{} // closed (stopOnce) when the workers are being stopped
	stopOnce      sync.Once
	spawn         *spawner // set by Start (or Check): forks every worker
	spawnStop     sync.Once

	mu       sync.Mutex
	started  bool // Start was called
	closed   bool // no new requests
	stopping bool // no new processes
	inflight int
	drained  chan struct{} // closed when inflight drops to 0 after closed
	closeErr error
	closeEnd chan struct{}
}

var _ http.Handler = (*Pool)(nil)

// Provision validates cfg, finds the interpreter and builds the pool
// without starting anything: no process, no goroutine, no temp folder.
// It is the step `portico check` and `portico run` share; Start then runs
// the workers, Check only imports the app once. A provisioned pool must be
// closed (Close) whether it was started or not.
func Provision(cfg config.WSGI, opts Options) (*Pool, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.Python == "" {
		cfg.Python = defaultPython
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = config.Duration(defaultTimeout)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fail := func(err error) error { return fmt.Errorf("wsgi app %q: %w", cfg.App, err) }
	mod, callable, ok := strings.Cut(cfg.App, ":")
	if !ok || mod == "" || callable == "" {
		return nil, fail(errors.New(`want "module:callable"`))
	}
	if cfg.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fail(err)
		}
		cfg.Dir = wd
	}
	if fi, err := os.Stat(cfg.Dir); err != nil {
		return nil, fail(fmt.Errorf("dir: %w", err))
	} else if !fi.IsDir() {
		return nil, fail(fmt.Errorf("dir %s is not a folder", cfg.Dir))
	}
	python, err := exec.LookPath(cfg.Python)
	if err != nil {
		return nil, fail(fmt.Errorf("python %q: %w", cfg.Python, err))
	}
	env := append(os.Environ(), "PYTHONUNBUFFERED=1")
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(cfg.Env[k], "\x00") {
			return nil, fail(fmt.Errorf("env %q: names must be non-empty without \"=\", and no NUL byte", k))
		}
		env = append(env, k+"="+cfg.Env[k])
	}
	var cred *syscall.Credential
	if cfg.User != "" && os.Geteuid() == 0 {
		if cred, err = credential(cfg.User); err != nil {
			return nil, fail(err)
		}
	}
	p := &Pool{
		clients: opts.Clients,
		cfg:     cfg,
		log:     log,
		prefix:  strings.TrimRight(opts.Prefix, "/"),
		python:  python,
		env:     env,
		cred:    cred,
		timeout: cfg.Timeout.D(),
		// Room for a warming replacement beside each worker.
		idle:         make(chan *proc, 2*cfg.Workers+1),
		maxWaiting:   int64(64 + 16*cfg.Workers),
		startTimeout: startTimeout,
		stop:         make(chan struct{}),
		closeEnd:     make(chan struct{}),
	}
	p.queueWait.Store(int64(cfg.Timeout.D()))
	p.pingEvery.Store(int64(defaultPingEvery))
	return p, nil
}

// New provisions a pool and starts it.
func New(cfg config.WSGI, opts Options) (*Pool, error) {
	p, err := Provision(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// Start starts cfg.Workers processes in parallel and returns when all of
// them have imported the app and listen, or with the first failure's
// reason; then nothing is left running. A pool starts at most once.
func (p *Pool) Start() error {
	p.mu.Lock()
	if p.started || p.closed {
		p.mu.Unlock()
		return fmt.Errorf("wsgi app %q: pool already started or closed", p.cfg.App)
	}
	p.started = true
	p.mu.Unlock()
	cfg, log := p.cfg, p.log
	fail := func(err error) error { return fmt.Errorf("wsgi app %q: %w", cfg.App, err) }
	if err := p.makeDir(); err != nil {
		return fail(err)
	}
	if p.cred == nil && os.Geteuid() == 0 {
		log.Warn("wsgi: workers run as root; set user in the wsgi section to drop privileges", "app", cfg.App)
	}
	p.spawn = newSpawner()
	for i := range cfg.Workers {
		p.workers = append(p.workers, newWorker(i+1, filepath.Join(p.dir, fmt.Sprintf("w%d.sock", i+1)), log))
	}

	// All workers start at once: a pool of 8 is ready as soon as one is.
	procs := make([]*proc, len(p.workers))
	errs := make([]error, len(p.workers))
	var wg sync.WaitGroup
	for i, w := range p.workers {
		wg.Go(func() { procs[i], errs[i] = p.start(w) })
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		p.mu.Lock()
		p.stopping = true
		p.mu.Unlock()
		p.stopOnce.Do(func() { close(p.stop) })
		for _, pr := range procs {
			if pr != nil {
				pr.kill("another worker failed to start")
				<-pr.done
			}
		}
		p.spawnStop.Do(p.spawn.stop)
		os.RemoveAll(p.dir)
		return fail(err)
	}
	for i, w := range p.workers {
		p.supervisors.Add(1)
		go p.supervise(w, procs[i])
		p.release(procs[i])
	}
	p.supervisors.Add(1)
	go p.pinger()
	p.running.Store(true)
	log.Info("wsgi: workers ready", "app", cfg.App, "workers", cfg.Workers, "python", p.python)
	return nil
}

// makeDir writes the adapter into a new private temp folder. A short
// folder keeps socket paths under the 108-byte unix limit.
func (p *Pool) makeDir() error {
	dir, err := os.MkdirTemp("", "portico-wsgi-")
	if err != nil {
		return err
	}
	adapter := filepath.Join(dir, "adapter.py")
	if err := os.WriteFile(adapter, adapterSource, 0o600); err != nil {
		os.RemoveAll(dir)
		return err
	}
	if c := p.cred; c != nil {
		// The workers read the adapter and make their sockets here.
		for _, f := range []string{dir, adapter} {
			if err := os.Chown(f, int(c.Uid), int(c.Gid)); err != nil {
				os.RemoveAll(dir)
				return err
			}
		}
	}
	p.dir, p.adapter = dir, adapter
	return nil
}

// checkArg, in place of a socket path, makes the adapter import the app,
// report and exit without serving.
const checkArg = "--check"

// Check imports the app once, in one short-lived process, and returns the
// error Start would (a missing module, a syntax error, a missing
// callable), without starting the pool. It is what `portico check` runs:
// the app is really imported, within startTimeout, and the process and
// its whole group are killed and reaped before Check returns (and die
// with portico if portico is killed first).
func (p *Pool) Check() error {
	c := &Pool{cfg: p.cfg, log: p.log, python: p.python, env: p.env, cred: p.cred,
		startTimeout: p.startTimeout, stop: make(chan struct{})}
	if err := c.makeDir(); err != nil {
		return fmt.Errorf("wsgi app %q: %w", p.cfg.App, err)
	}
	defer os.RemoveAll(c.dir)
	c.spawn = newSpawner()
	defer c.spawn.stop()
	pr, err := c.start(newWorker(0, checkArg, c.log))
	if err != nil {
		return fmt.Errorf("wsgi app %q: %w", p.cfg.App, err)
	}
	pr.kill("check done")
	<-pr.done
	return nil
}

// Check provisions a pool for cfg and imports its app once (Pool.Check).
func Check(cfg config.WSGI, opts Options) error {
	p, err := Provision(cfg, opts)
	if err != nil {
		return err
	}
	return p.Check()
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Pool) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// release makes pr available to the next request, unless it has exited
// or has been replaced (then it retires).
func (p *Pool) release(pr *proc) {
	if !pr.alive() {
		return
	}
	pr.idle = time.Now()
	p.mu.Lock()
	// Under mu: replace marks pr retiring under mu, then looks for it in
	// the queue, so pr is either found there or retired here.
	if pr.state.Load() != stateRetiring {
		select {
		case p.idle <- pr:
		default: // cannot happen: one token per live process
		}
		pr = nil
	}
	p.mu.Unlock()
	if pr != nil {
		p.retire(pr)
	}
}

// usable reports whether pr, taken from the idle queue, may serve; a
// replaced one is retired instead.
func (p *Pool) usable(pr *proc) bool {
	if !pr.alive() {
		return false // died while idle; its supervisor replaces it
	}
	if pr.state.Load() == stateRetiring {
		p.retire(pr)
		return false
	}
	return true
}

var (
	errBusy       = errors.New("no worker became idle in time")
	errClosed     = errors.New("wsgi pool closed")
	errAllFailing = errors.New("no worker is running: every restart fails (see the log)")
)

// acquire takes the next idle worker, waiting up to queueWait.
func (p *Pool) acquire(ctx context.Context) (*proc, error) {
	for {
		select {
		case pr := <-p.idle:
			if p.usable(pr) {
				return pr, nil
			}
			continue
		default:
		}
		break
	}
	if p.failing.Load() == int64(len(p.workers)) {
		// Every worker fails to start (the app broke since New): no
		// point in making clients wait for a restart that keeps failing.
		return nil, errAllFailing
	}
	if p.waiting.Add(1) > p.maxWaiting {
		p.waiting.Add(-1)
		return nil, errBusy
	}
	defer p.waiting.Add(-1)
	t := time.NewTimer(time.Duration(p.queueWait.Load()))
	defer t.Stop()
	for {
		select {
		case pr := <-p.idle:
			if p.usable(pr) {
				return pr, nil
			}
		case <-t.C:
			return nil, errBusy
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.stop:
			return nil, errClosed
		}
	}
}

func (p *Pool) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.inflight++
	return true
}

func (p *Pool) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if p.inflight == 0 && p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
}

// Grace between SIGTERM and SIGKILL when ctx allows more.
const termGrace = 5 * time.Second

// Close stops accepting requests (503), waits for those in flight (until
// ctx ends), then stops the workers: SIGTERM to each process group, SIGKILL
// after termGrace or when ctx ends, and waits until every process is reaped.
// It removes the pool's temp folder. Calling it again waits for the first
// call and returns its result.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		select {
		case <-p.closeEnd:
			return p.closeErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.closed = true
	if !p.started {
		// Provisioned only (portico check): nothing runs, nothing to stop.
		p.stopping = true
		p.mu.Unlock()
		p.stopOnce.Do(func() { close(p.stop) })
		close(p.closeEnd)
		return nil
	}
	var drained chan struct{}
	if p.inflight > 0 {
		drained = make(chan struct{})
		p.drained = drained
	}
	p.mu.Unlock()

	var errs []error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("wsgi: requests still in flight: %w", ctx.Err()))
		}
	}

	p.mu.Lock()
	p.stopping = true
	// Every process: serving ones, warming replacements, retiring ones.
	procs := slices.Collect(maps.Keys(p.procs))
	p.mu.Unlock()
	p.stopOnce.Do(func() { close(p.stop) })
	for _, pr := range procs {
		pr.signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() {
		p.supervisors.Wait()
		for _, pr := range procs {
			<-pr.done
		}
		close(done)
	}()
	grace := time.NewTimer(termGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	case <-ctx.Done():
	}
	select {
	case <-done:
	default:
		for _, pr := range procs {
			pr.kill("did not stop after SIGTERM")
		}
		// SIGKILL cannot be ignored; only a process stuck in the kernel
		// (uninterruptible I/O) could keep us here.
		kt := time.NewTimer(termGrace)
		select {
		case <-done:
		case <-kt.C:
			errs = append(errs, errors.New("wsgi: a worker did not exit after SIGKILL"))
		}
		kt.Stop()
	}
	// No process is started from now on (stopping is set): the spawner's
	// thread may end.
	p.spawnStop.Do(p.spawn.stop)
	if err := os.RemoveAll(p.dir); err != nil {
		errs = append(errs, err)
	}
	p.closeErr = errors.Join(errs...)
	close(p.closeEnd)
	p.log.Info("wsgi: workers stopped", "app", p.cfg.App)
	return p.closeErr
}

// pids lists the live worker processes, warming and retiring ones
// included (for tests and diagnostics).
func (p *Pool) pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for pr := range p.procs {
		if pr.alive() && pr.w.id > 0 {
			out = append(out, pr.pid)
		}
	}
	slices.Sort(out)
	return out
}

// splitHostPort is net.SplitHostPort that tolerates a missing port.
func splitHostPort(addr string) (host, port string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), ""
	}
	return h, p
}
