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
//     portico runs as root, the uid/gid of cfg.User.
//
// What is done with it: its response header block is parsed strictly (a
// malformed one is a 502), its body streamed to the client as written, its
// stderr logged line by line. A script past its timeout, whose client went
// away, or still running at Close gets SIGTERM, a grace period, then SIGKILL,
// to its whole process group; it is always reaped.
package cgi

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/errorpage"
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
	// killGrace is the time between SIGTERM and SIGKILL.
	killGrace = 2 * time.Second
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
		grace:      killGrace,
		log:        opts.Logger,
		redispatch: opts.Redispatch,
		spool:      cfg.SpoolChunked == nil || *cfg.SpoolChunked,
		closing:    make(chan struct{}),
		hardKill:   make(chan struct{}),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.timeout <= 0 {
		h.timeout = defaultTimeout
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

	closeInheritedOnce.Do(closeInheritedOnExec)
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

// unreachableBy returns the first folder from / to dir that the user of
// cred may not enter (by its mode bits; ACLs are not read), or "".
func unreachableBy(dir string, cred *syscall.Credential) string {
	for p := dir; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			var bit uint32 = 0o001
			switch {
			case st.Uid == cred.Uid:
				bit = 0o100
			case st.Gid == cred.Gid:
				bit = 0o010
			}
			if st.Mode&bit == 0 {
				return p
			}
		}
		if p == "/" || p == "." {
			return ""
		}
	}
}

var closeInheritedOnce sync.Once

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Go opens all its files that way, but descriptors portico inherited from
// whatever started it (a shell's pipe, a supervisor's socket) are not, and
// every script would inherit them in turn. Done once, the first time a CGI
// handler is built; explicit passing (exec.Cmd.ExtraFiles) is unaffected.
func closeInheritedOnExec() {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	self := int(d.Fd())
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err == nil && fd > 2 && fd != self {
			syscall.CloseOnExec(fd)
		}
	}
	d.Close()
}

// credential returns the uid/gid scripts run as, or nil for root.
func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return nil, fmt.Errorf("cgi user %q: %w", name, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cgi user %q: non-numeric uid/gid", name)
	}
	if uid == 0 {
		return nil, nil
	}
	// Groups set explicitly: root's supplementary groups are dropped.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}, nil
}

// lookPath finds prog in path (the scripts' PATH, not portico's).
func lookPath(prog, path string) (string, error) {
	if strings.Contains(prog, "/") {
		abs, err := filepath.Abs(prog)
		if err != nil {
			return "", err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not an executable file", abs)
		}
		return abs, nil
	}
	for dir := range strings.SplitSeq(path, ":") {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		f := filepath.Join(dir, prog)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("not found in PATH %s", path)
}

type ctxKey int

const redirectDepthKey ctxKey = 0

// ServeHTTP runs the script the request path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.isClosed.Load() {
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return
	}
	s, status := h.resolve(r)
	if status != 0 {
		errorpage.Write(w, r, status)
		return
	}

	// The body: none, streamed (length known), or chunked (spooled).
	var (
		body    io.Reader
		spooled *os.File
		clen    int64 = -1
	)
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		if r.Header.Get("Content-Length") != "" {
			clen = 0
		}
	case r.ContentLength >= 0:
		clen = r.ContentLength
		if clen > 0 {
			body = r.Body
		}
	default:
		if !h.spool {
			errorpage.Write(w, r, http.StatusLengthRequired)
			return
		}
		var err error
		spooled, clen, err = spool(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				errorpage.Write(w, r, http.StatusRequestEntityTooLarge)
			} else if r.Context().Err() == nil {
				h.log.Warn("cgi: reading chunked body", "script", s.name, "err", err)
				errorpage.Write(w, r, http.StatusBadRequest)
			}
			return
		}
		defer spooled.Close()
	}

	select {
	case h.sem <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return
	}
	redirect := func() *http.Request {
		defer func() { <-h.sem }() // also when run aborts the response
		return h.run(w, r, s, body, spooled, clen)
	}()
	if redirect != nil {
		h.redispatch(w, redirect)
	}
}

// spool copies a body of unknown length to an unlinked temporary file.
func spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "portico-cgi-body-*")
	if err != nil {
		return nil, 0, err
	}
	_ = os.Remove(f.Name())
	bufp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(f, onlyReader{body}, *bufp)
	copyBufs.Put(bufp)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n, nil
}

// enter registers a request with Close; false once Close has started.
func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.active.Add(1)
	return true
}

// run starts the script and relays its response. It returns a request to
// redispatch when the script answered with a local redirect.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, s *script, body io.Reader, spooled *os.File, clen int64) *http.Request {
	if !h.enter() {
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return nil
	}
	defer h.active.Done()

	p, err := h.start(r, s, body, spooled, clen)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, fs.ErrPermission) {
			status = http.StatusForbidden
		}
		if status == http.StatusForbidden && h.cred != nil {
			h.log.Error("cgi: cannot start script (scripts run as an unprivileged user: the script and its folders must be readable and executable by it)",
				"script", s.name, "uid", h.cred.Uid, "err", err)
		} else {
			h.log.Error("cgi: cannot start script", "script", s.name, "err", err)
		}
		errorpage.Write(w, r, status)
		return nil
	}

	br := readers.Get().(*bufio.Reader)
	br.Reset(p.stdout)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	resp, err := parseHeader(br, s.nph)
	if err != nil {
		p.requestStop(stopBadOutput)
		p.finish()
		h.headerFailed(w, r, p, s, err)
		return nil
	}

	if resp.location != "" && resp.status == 0 && !s.nph && isLocalRedirect(resp.location) {
		// RFC 3875 section 6.2.2: the server answers as if the client had
		// asked for the new path. The script's body is not wanted.
		p.closeStdout()
		p.finish()
		if p.reason.Load() != stopNone && p.reason.Load() != stopBadOutput {
			h.stoppedEarly(w, r, p, s)
			return nil
		}
		return h.redirectRequest(w, r, s, resp.location)
	}

	status := resp.status
	if status == 0 {
		status = http.StatusOK
		if resp.location != "" {
			status = http.StatusFound // RFC 3875 section 6.2.3
		}
	}
	dst := w.Header()
	for k, v := range resp.header {
		dst[k] = v
	}
	if !resp.hasType {
		dst["Content-Type"] = nil // no sniffing of what the script did not say
	}
	w.WriteHeader(status)

	if !bodyAllowed(r.Method, status) {
		_, _ = io.Copy(io.Discard, br)
	} else if werr := h.copyBody(w, br, p); werr != nil {
		p.requestStop(stopGone)
		p.closeStdout()
	}
	p.finish()
	if why := p.reason.Load(); why != stopNone {
		if why != stopGone && why != stopBadOutput {
			h.log.Error("cgi: script stopped while sending its body", "script", s.name, "reason", reasonText(why))
		}
		// The body is cut: tell the client by aborting the connection
		// rather than ending the response as if it were complete.
		panic(http.ErrAbortHandler)
	}
	if code := exitCode(p.waitErr); code != 0 && p.reason.Load() == stopNone {
		h.log.Warn("cgi: script exited with an error after answering", "script", s.name, "exit", code)
	}
	return nil
}

// start launches the script with its pipes and goroutines.
func (h *Handler) start(r *http.Request, s *script, body io.Reader, spooled *os.File, clen int64) (*proc, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	var inR, inW *os.File
	cmd := &exec.Cmd{
		Path:   s.prog,
		Args:   s.args,
		Env:    h.env(r, s, clen),
		Dir:    s.dir,
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:    true,
			Credential: h.cred,
		},
		WaitDelay: h.grace,
	}
	if spooled != nil {
		cmd.Stdin = spooled
	} else if body != nil {
		inR, inW, err = os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return nil, err
		}
		cmd.Stdin = inR
	}
	for try := 0; ; try++ {
		err = cmd.Start()
		// ETXTBSY: the file is open for writing somewhere (being deployed,
		// or a descriptor inherited by a concurrent fork); it passes.
		if !errors.Is(err, syscall.ETXTBSY) || try == 3 {
			break
		}
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
		cmd = &exec.Cmd{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir, Stdin: cmd.Stdin,
			Stdout: cmd.Stdout, Stderr: cmd.Stderr, SysProcAttr: cmd.SysProcAttr, WaitDelay: cmd.WaitDelay}
	}
	// The child has its copies; the parent keeps only its own ends.
	outW.Close()
	errW.Close()
	if inR != nil {
		inR.Close()
	}
	if err != nil {
		outR.Close()
		errR.Close()
		if inW != nil {
			inW.Close()
		}
		return nil, err
	}
	p := &proc{
		h:          h,
		cmd:        cmd,
		pgid:       cmd.Process.Pid,
		script:     s.name,
		stdout:     outR,
		stderr:     errR,
		exited:     make(chan struct{}),
		stop:       make(chan int32, 1),
		stdoutDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.supervise(r.Context().Done(), time.NewTimer(h.timeout))
	go p.logStderr()
	if inW != nil {
		go p.feed(inW, body)
	}
	return p, nil
}

// finish is called once ServeHTTP stops reading stdout; it returns when the
// script is reaped, its group gone and its pipes closed.
func (p *proc) finish() {
	p.closeStdout()
	close(p.stdoutDone)
	<-p.done
}

// headerFailed answers when no valid header block came from the script.
func (h *Handler) headerFailed(w http.ResponseWriter, r *http.Request, p *proc, s *script, err error) {
	if why := p.reason.Load(); why != stopNone && why != stopBadOutput {
		h.stoppedEarly(w, r, p, s)
		return
	}
	code := exitCode(p.waitErr)
	if errors.Is(err, errIncomplete) && code != 0 {
		h.log.Error("cgi: script failed before answering", "script", s.name, "exit", code)
		errorpage.Write(w, r, http.StatusInternalServerError)
		return
	}
	h.log.Error("cgi: bad response from script", "script", s.name, "err", err, "exit", code)
	errorpage.Write(w, r, http.StatusBadGateway)
}

// stoppedEarly answers for a script stopped before its header block.
func (h *Handler) stoppedEarly(w http.ResponseWriter, r *http.Request, p *proc, s *script) {
	why := p.reason.Load()
	h.log.Warn("cgi: script stopped", "script", s.name, "reason", reasonText(why))
	switch why {
	case stopTimeout:
		errorpage.Write(w, r, http.StatusGatewayTimeout)
	case stopShutdown:
		errorpage.Write(w, r, http.StatusServiceUnavailable)
	case stopBodyLarge:
		errorpage.Write(w, r, http.StatusRequestEntityTooLarge)
	case stopBodyError:
		errorpage.Write(w, r, http.StatusBadRequest)
	case stopGone:
		// Nobody is listening.
	default:
		errorpage.Write(w, r, http.StatusBadGateway)
	}
}

func reasonText(why int32) string {
	switch why {
	case stopTimeout:
		return "timeout"
	case stopGone:
		return "client went away"
	case stopShutdown:
		return "shutdown"
	case stopBodyLarge:
		return "request body too large"
	case stopBodyError:
		return "request body read failed"
	case stopBadOutput:
		return "bad output"
	}
	return "none"
}

// redirectRequest builds the GET of a local redirect: the same client, Host
// and context, no body. It goes through the site's full routing
// (Options.Redispatch), never straight to a handler, so every check on the
// new path applies (Apache CVE-2024-38476).
func (h *Handler) redirectRequest(w http.ResponseWriter, r *http.Request, s *script, loc string) *http.Request {
	depth, _ := r.Context().Value(redirectDepthKey).(int)
	u, err := url.ParseRequestURI(loc)
	if h.redispatch == nil || err != nil || depth >= maxRedirects {
		h.log.Error("cgi: cannot follow local redirect", "script", s.name, "location", loc,
			"depth", depth, "err", err, "redispatch", h.redispatch != nil)
		errorpage.Write(w, r, http.StatusInternalServerError)
		return nil
	}
	nr := r.Clone(context.WithValue(r.Context(), redirectDepthKey, depth+1))
	nr.Method = http.MethodGet
	nr.URL = u
	nr.RequestURI = loc
	nr.Body = http.NoBody
	nr.GetBody = nil
	nr.ContentLength = 0
	nr.TransferEncoding = nil
	nr.Form, nr.PostForm, nr.MultipartForm = nil, nil, nil
	nr.Trailer = nil
	for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Expect"} {
		nr.Header.Del(k)
	}
	return nr
}

// Output coalescing: body bytes are flushed to the client as soon as the
// script pauses for flushDelay, and at least every maxFlushDelay, so a
// streaming script is seen live while a fast one gets few, full writes (and
// a short response a Content-Length).
const (
	flushDelay    = 2 * time.Millisecond
	maxFlushDelay = 20 * time.Millisecond
)

// copyBody streams the script's output to the client. It returns the error
// of a write to the client, nil otherwise (a read error ends the body).
func (h *Handler) copyBody(w http.ResponseWriter, br *bufio.Reader, p *proc) error {
	rc := http.NewResponseController(w)
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	pending := false
	var lastFlush time.Time
	for {
		if pending {
			_ = p.stdout.SetReadDeadline(time.Now().Add(flushDelay))
		}
		n, err := br.Read(buf)
		if pending {
			_ = p.stdout.SetReadDeadline(time.Time{})
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if !pending {
				pending = true
				lastFlush = time.Now()
			} else if time.Since(lastFlush) >= maxFlushDelay {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return ferr
				}
				lastFlush = time.Now()
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return ferr
				}
				pending = false
				continue
			}
			return nil // EOF, or the pipe closed by the supervisor
		}
	}
}

func bodyAllowed(method string, status int) bool {
	return method != http.MethodHead && status != http.StatusNoContent && status != http.StatusNotModified
}

// exitCode is the script's exit status, -1 when killed by a signal.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
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
	return err
}
