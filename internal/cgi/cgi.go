// Package cgi runs CGI scripts (RFC 3875).
//
// A Handler serves one cgi route: the URL path Prefix+"/x.py/more" runs the
// file Root/x.py with SCRIPT_NAME Prefix+"/x.py" and PATH_INFO "/more". It
// is its own CGI host rather than net/http/cgi, which has no timeout, no
// process groups, ignores the request context and refuses chunked bodies.
//
// What a script gets:
//   - argv is only the script (or [interpreter, script]); nothing from the
//     request is ever in argv, and no shell is involved;
//   - an environment built from an allow-list: the meta-variables of RFC
//     3875 section 4.1, HTTP_* request headers (never HTTP_PROXY, never
//     headers whose name has "_"), PATH and cfg.Env;
//   - the request body on stdin, streamed (chunked bodies are spooled to
//     an unlinked temporary file first, to learn CONTENT_LENGTH);
//   - its own folder as working directory, its own process group, and, when
//     portico runs as root, the uid/gid of cfg.User;
//   - the rlimits of cfg.Limits from its first instruction (limits.go), a
//     PORTICO_CGI_ID token in its environment, its own cgroup where
//     possible (cgroup.go), and SIGKILL should portico die (parent-death
//     signal).
//
// What is done with it: its response header block is parsed strictly (a
// malformed one is a 502), its body streamed to the client as written but
// never past its own Content-Length (body.go), its stderr logged line by
// line. A script past its timeout, whose client went away, or still running
// at Close gets SIGTERM, cfg.KillGrace, then SIGKILL, with everything it
// started, also what escaped its process group (descendants.go); a script
// that exits leaving processes behind has them stopped the same way. All
// are reaped.
package cgi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/reaper"
)

// Options are the dependencies of a CGI handler.
type Options struct {
	Logger *slog.Logger
	// Prefix is the route prefix without its trailing slash: the URL path
	// Prefix+"/x.py/more" runs Root/x.py with PATH_INFO "/more".
	Prefix string
	// Redispatch serves a CGI local redirect (a "Location: /path" response)
	// as a new GET through the site's full routing.
	Redispatch func(w http.ResponseWriter, r *http.Request)
	// Clients decides REMOTE_ADDR (X-Forwarded-For through trusted
	// proxies); nil: the peer.
	Clients *clientip.Resolver
}

// Defaults applied by New to zero values (the config loader fills the same).
const (
	defaultTimeout      = 30 * time.Second
	defaultUser         = "nobody"
	defaultMaxProcesses = 64
	// maxRedirects bounds chains of local redirects.
	maxRedirects = 10
)

// Handler runs the scripts of one cgi route. It is safe for concurrent use.
type Handler struct {
	clients    *clientip.Resolver
	root       string
	fsroot     *os.Root
	prefix     string
	docRoot    string
	timeout    time.Duration
	grace      time.Duration
	log        *slog.Logger
	redispatch func(http.ResponseWriter, *http.Request)
	interps    map[string]string // lower-case extension -> absolute program
	spool      bool
	baseEnv    []string
	cred       *syscall.Credential
	sem        chan struct{}
	limiter    *limiter
	id         string        // random, in the token of each run
	runs       atomic.Uint64 // runs started, the token's other part
	running    sync.Map      // pid -> struct{}: scripts started and not reaped
	timeouts   atomic.Int64  // scripts stopped by the timeout (status page, metrics)
	cg         *cgroups      // a cgroup per run, where possible (cgroup.go)

	mu        sync.Mutex
	closed    bool
	isClosed  atomic.Bool    // closed, readable without mu
	active    sync.WaitGroup // requests inside run
	closing   chan struct{}  // closed when Close starts
	hardKill  chan struct{}  // closed when Close runs out of time
	closeOnce sync.Once
	killOnce  sync.Once
}

var _ http.Handler = (*Handler)(nil)

// New validates cfg and builds the handler. It fails when the root is not a
// folder, an interpreter is not found, cfg.Env sets a variable portico sets
// per request, or (running as root) cfg.User does not exist.
func New(cfg config.CGI, opts Options) (*Handler, error) {
	if cfg.Root == "" {
		return nil, errors.New("cgi: root is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("cgi root %s: %w", cfg.Root, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("cgi root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("cgi root %s: not a folder", root)
	}
	h := &Handler{
		clients:    opts.Clients,
		root:       root,
		prefix:     strings.TrimSuffix(opts.Prefix, "/"),
		docRoot:    root,
		timeout:    cfg.Timeout.D(),
		grace:      cfg.KillGrace.D(),
		log:        opts.Logger,
		redispatch: opts.Redispatch,
		spool:      cfg.SpoolChunked == nil || *cfg.SpoolChunked,
		closing:    make(chan struct{}),
		hardKill:   make(chan struct{}),
		id:         newHandlerID(),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.timeout <= 0 {
		h.timeout = defaultTimeout
	}
	if h.grace <= 0 {
		h.grace = config.DefaultCGIKillGrace
	}
	if h.grace > h.timeout {
		h.grace = h.timeout
	}
	maxProcs := cfg.MaxProcesses
	if maxProcs <= 0 {
		maxProcs = defaultMaxProcesses
	}
	h.sem = make(chan struct{}, maxProcs)

	var path string
	h.baseEnv, path, err = baseEnv(cfg.Env, root)
	if err != nil {
		return nil, err
	}
	for _, kv := range h.baseEnv {
		if v, ok := strings.CutPrefix(kv, "DOCUMENT_ROOT="); ok {
			h.docRoot = v
		}
	}

	// Interpreters are looked up in the scripts' PATH, once.
	h.interps = make(map[string]string, len(cfg.Interpreters))
	for ext, prog := range cfg.Interpreters {
		if !strings.HasPrefix(ext, ".") || len(ext) < 2 || strings.ContainsAny(ext, "/\x00") {
			return nil, fmt.Errorf("cgi interpreters: extension %q must look like \".py\"", ext)
		}
		abs, err := lookPath(prog, path)
		if err != nil {
			return nil, fmt.Errorf("cgi interpreters: %s for %s: %w", prog, ext, err)
		}
		h.interps[strings.ToLower(ext)] = abs
	}

	if os.Geteuid() == 0 {
		name := cfg.User
		if name == "" {
			name = defaultUser
		}
		h.cred, err = credential(name)
		if err != nil {
			return nil, err
		}
	}

	h.limiter = newLimiter(cfg.Limits, h.cred == nil, h.log.Warn)

	// Orphaned descendants of scripts must stay in portico's tree to be
	// found again (descendants.go); the server also reaps them (package
	// reaper), but the guarantee must not depend on who built the handler.
	if err := reaper.BecomeSubreaper(); err != nil {
		h.log.Warn("cgi: cannot become a child subreaper; descendants of scripts that leave their session may survive them", "err", err)
	}
	closeInheritedOnce.Do(closeInheritedOnExec)
	h.cg = newCgroups(h.id)
	if h.cred != nil {
		if dir := unreachableBy(root, h.cred); dir != "" {
			h.log.Warn("cgi: scripts run as an unprivileged user who cannot enter a folder on the way to the cgi root; they will fail with 403",
				"user", cmp.Or(cfg.User, defaultUser), "folder", dir, "root", root)
		}
	}

	h.fsroot, err = os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("cgi root: %w", err)
	}
	return h, nil
}

// Close stops every running script (SIGTERM to each group, then SIGKILL
// after the grace period or when ctx ends) and waits until all are reaped.
// Requests arriving after Close get 503. Call it at shutdown, or on the old
// handler of a reload once its requests have drained: it kills scripts in
// flight.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.isClosed.Store(true)
	h.mu.Unlock()
	h.closeOnce.Do(func() { close(h.closing) })
	idle := make(chan struct{})
	go func() {
		h.active.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		h.killOnce.Do(func() { close(h.hardKill) })
		// SIGKILL is not refused: the wait is short now.
		select {
		case <-idle:
		case <-time.After(h.grace):
		}
	}
	if h.fsroot != nil {
		h.fsroot.Close()
	}
	if h.cg != nil {
		h.cg.close()
	}
	return err
}

// isRunning reports whether pid is a script of this handler not yet reaped.
func (h *Handler) isRunning(pid int) bool {
	_, ok := h.running.Load(pid)
	return ok
}
