package wsgi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"portico/internal/errorpage"
)

// Private request headers: set by the Pool, read and removed by the
// adapter. Any a client sends is deleted first (privatePrefix).
const (
	privatePrefix   = "X-Portico-"
	hdrScriptName   = "X-Portico-Script-Name"
	hdrHost         = "X-Portico-Host"
	hdrRemoteAddr   = "X-Portico-Remote-Addr"
	hdrRemotePort   = "X-Portico-Remote-Port"
	hdrServerName   = "X-Portico-Server-Name"
	hdrServerPort   = "X-Portico-Server-Port"
	hdrScheme       = "X-Portico-Scheme"
	hdrProtocol     = "X-Portico-Protocol"
	hdrRequestURI   = "X-Portico-Request-Uri"
	hdrAdapterError = "X-Portico-Error" // response: the app raised; body is the adapter's 500
)

// memBody is how much of a request body is held in memory; beyond it the
// body is spooled to an unlinked temp file in the pool's folder.
const memBody = 256 << 10

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
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	wd := newWatchdog(p.timeout, func() {
		p.timeouts.Add(1)
		pr.kill("request exceeded timeout " + p.timeout.String() + ": " + r.Method + " " + r.URL.Path)
		cancel()
	})
	defer wd.stop()

	resp, err := pr.w.transport.RoundTrip(p.outRequest(ctx, r, body))
	if err != nil {
		timedOut := wd.stop()
		var de *dialError
		switch {
		case timedOut:
			p.log.Warn("wsgi: request timed out; worker killed and replaced",
				"worker", pr.w.id, "pid", pr.pid, "path", r.URL.Path, "timeout", p.timeout)
			errorpage.Write(w, r, http.StatusGatewayTimeout)
			return done
		case errors.As(err, &de):
			p.log.Warn("wsgi: worker unreachable; trying another", "worker", pr.w.id, "pid", pr.pid, "err", err)
			// Usually it has just died and is about to be reaped; one that
			// lives on without listening is broken: replace it.
			if waitDone(pr, 100*time.Millisecond); pr.alive() {
				pr.kill("unreachable: " + de.Error())
			}
			return notDelivered
		default:
			p.log.Error("wsgi: worker failed during request", "worker", pr.w.id, "pid", pr.pid,
				"path", r.URL.Path, "err", err)
			// Give the supervisor a moment to see an exit, so the retry
			// does not pick a dying worker; a live one is reusable (each
			// request has its own connection).
			waitDone(pr, 50*time.Millisecond)
			p.release(pr)
			return workerDied
		}
	}

	if resp.Header.Get(hdrAdapterError) != "" {
		// The app raised before it started its response; the traceback is
		// in the log. Answer with portico's own error page.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !wd.stop() {
			p.release(pr)
		}
		errorpage.Write(w, r, http.StatusInternalServerError)
		return done
	}

	h := w.Header()
	for k, vv := range resp.Header {
		if responseHopByHop(k) || strings.HasPrefix(k, privatePrefix) {
			continue
		}
		h[k] = vv
	}

	// The response is read from the worker as fast as the app writes it,
	// whatever the client's speed, and the worker is released as soon as
	// the app is done: a slow reader never holds a sync worker (nginx's
	// proxy_buffering). A small sized response is read whole first.
	if resp.ContentLength >= 0 && resp.ContentLength <= spoolMem {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch err := p.finishWorker(pr, wd, r, err, false); {
		case err == errStalled:
			clear(h)
			errorpage.Write(w, r, http.StatusGatewayTimeout)
			return done
		case err != nil:
			clear(h)
			errorpage.Write(w, r, http.StatusBadGateway)
			return done
		}
		w.WriteHeader(resp.StatusCode)
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
			n, err = resp.Body.Read(*bp)
			if n > 0 {
				wd.reset() // progress: the worker is not frozen
				if perr := sp.put((*bp)[:n]); perr != nil {
					p.log.Error("wsgi: buffering response", "err", perr)
					err = perr
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
		resp.Body.Close()
		sp.finish(p.finishWorker(pr, wd, r, err, sp.isAbandoned()))
	}()
	defer func() {
		<-produced // bounded: abandon closes the body, the watchdog kills the worker
		sp.close()
	}()

	rc := http.NewResponseController(w)
	w.WriteHeader(resp.StatusCode)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for {
		n, err := sp.take(*bp)
		if n > 0 {
			if _, werr := w.Write((*bp)[:n]); werr != nil {
				sp.abandon(resp.Body)
				return done
			}
			continue
		}
		if err == io.EOF {
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
			// The client left: closing the worker's connection makes the
			// adapter's next write fail, which ends the app's iterable
			// (its close() is called).
			sp.abandon(resp.Body)
			return done
		}
	}
}

var errStalled = errors.New("worker stalled past the timeout")

// finishWorker settles pr after its response body was read: released to
// the pool, or not when the watchdog killed it. It returns nil when the
// body is complete, errStalled when the watchdog fired, or readErr.
func (p *Pool) finishWorker(pr *proc, wd *watchdog, r *http.Request, readErr error, abandoned bool) error {
	if wd.stop() {
		p.log.Warn("wsgi: response stalled past timeout; worker killed and replaced",
			"worker", pr.w.id, "pid", pr.pid, "path", r.URL.Path, "timeout", p.timeout)
		return errStalled
	}
	if readErr != nil && !abandoned {
		p.log.Warn("wsgi: response cut short by the worker", "worker", pr.w.id, "pid", pr.pid,
			"path", r.URL.Path, "err", readErr)
		waitDone(pr, 50*time.Millisecond) // do not hand out a dying worker
	}
	p.release(pr)
	return readErr
}

// spoolMem is how much of a response is held in memory per request before
// the rest waits in an unlinked temp file for a slow client.
const spoolMem = 256 << 10

// respSpool is the buffer between a worker's response (put, by the
// producer goroutine) and the client (take, by the handler): memory first,
// then a temp file, so the producer never waits for the client.
type respSpool struct {
	dir  string
	wake chan struct{} // a token whenever data or the end arrives

	mu        sync.Mutex
	mem       []byte
	file      *os.File
	fw, fr    int64 // write and read offsets in file
	done      bool
	err       error
	abandoned bool
}

func (s *respSpool) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *respSpool) put(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.abandoned {
		return nil
	}
	defer s.signal()
	if s.file == nil && len(s.mem)+len(b) <= spoolMem {
		s.mem = append(s.mem, b...)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "resp-")
		if err != nil {
			return err
		}
		os.Remove(f.Name()) // the descriptor keeps it; nothing is left behind
		s.file = f
	}
	n, err := s.file.WriteAt(b, s.fw)
	s.fw += int64(n)
	return err
}

// take copies pending bytes into buf. With nothing pending it returns
// 0 and nil while the producer runs (wait on wake), then io.EOF or the
// producer's error.
func (s *respSpool) take(buf []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mem) > 0 {
		n := copy(buf, s.mem)
		s.mem = s.mem[n:]
		return n, nil
	}
	if s.file != nil && s.fr < s.fw {
		n, err := s.file.ReadAt(buf[:min(int64(len(buf)), s.fw-s.fr)], s.fr)
		s.fr += int64(n)
		if n > 0 || err == nil {
			return n, nil
		}
		return 0, err
	}
	if s.done {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.EOF
	}
	return 0, nil
}

func (s *respSpool) finish(err error) {
	s.mu.Lock()
	s.done, s.err = true, err
	s.mu.Unlock()
	s.signal()
}

// abandon drops what is buffered and stops the producer by closing the
// worker's connection.
func (s *respSpool) abandon(body io.Closer) {
	s.mu.Lock()
	s.abandoned = true
	s.mem = nil
	s.mu.Unlock()
	body.Close()
}

func (s *respSpool) isAbandoned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abandoned
}

// close releases the temp file; call it once the producer is done.
func (s *respSpool) close() {
	if s.file != nil {
		s.file.Close()
	}
}

// watchdog kills a frozen worker: it fires when d passes without a reset.
// Once stop has returned, it can no longer fire, so a worker released
// after stop is never killed by a late timer.
type watchdog struct {
	mu      sync.Mutex
	t       *time.Timer
	d       time.Duration
	fired   bool
	stopped bool
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	wd := &watchdog{d: d}
	wd.mu.Lock()
	defer wd.mu.Unlock()
	wd.t = time.AfterFunc(d, func() {
		wd.mu.Lock()
		defer wd.mu.Unlock()
		if wd.stopped {
			return
		}
		wd.fired = true
		fire()
	})
	return wd
}

func (wd *watchdog) reset() {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if !wd.stopped && !wd.fired {
		wd.t.Reset(wd.d)
	}
}

// stop disarms the watchdog and reports whether it had fired.
func (wd *watchdog) stop() bool {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	wd.stopped = true
	wd.t.Stop()
	return wd.fired
}

// outRequest builds the request to a worker: the client's method, path,
// query and safe headers, plus the private headers the adapter needs.
func (p *Pool) outRequest(ctx context.Context, r *http.Request, body *reqBody) *http.Request {
	u := *r.URL
	u.Scheme, u.Host, u.User, u.Opaque, u.Fragment = "http", "wsgi", nil, "", ""
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	out := (&http.Request{
		Method:     r.Method,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     forwardHeaders(r.Header),
		Host:       "wsgi",
	}).WithContext(ctx)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // not Go's default
	}
	// An empty POST, PUT or PATCH still gets "Content-Length: 0" from the
	// Transport, so the app sees CONTENT_LENGTH=0.
	if body.size > 0 {
		out.ContentLength = body.size
		out.Body = body.reader()
		out.GetBody = func() (io.ReadCloser, error) { return body.reader(), nil }
	}

	h := out.Header
	path := r.URL.Path
	if p.prefix != "" && strings.HasPrefix(path, p.prefix) &&
		(len(path) == len(p.prefix) || path[len(p.prefix)] == '/') {
		h.Set(hdrScriptName, p.prefix)
	}
	if r.Host != "" {
		h.Set(hdrHost, r.Host)
	}
	remoteIP, remotePort := splitHostPort(r.RemoteAddr)
	if a, fromPeer := p.clients.Client(r.RemoteAddr, r.Header["X-Forwarded-For"]); !fromPeer {
		remoteIP, remotePort = a.String(), "" // the client behind trusted proxies
	}
	if remoteIP != "" {
		h.Set(hdrRemoteAddr, remoteIP)
	}
	if remotePort != "" {
		h.Set(hdrRemotePort, remotePort)
	}
	var localIP, localPort string
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		localIP, localPort = splitHostPort(a.String())
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if localPort == "" {
		// Never the port named in Host: the client chose that.
		localPort = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	serverName, _ := splitHostPort(r.Host)
	if serverName == "" {
		serverName = localIP
	}
	if serverName == "" {
		serverName = "localhost"
	}
	h.Set(hdrServerName, serverName)
	h.Set(hdrServerPort, localPort)
	h.Set(hdrScheme, scheme)
	h.Set(hdrProtocol, r.Proto)
	if uri := r.RequestURI; uri != "" && printable(uri) {
		h.Set(hdrRequestURI, uri)
	}
	return out
}

// forwardHeaders copies the request headers that may reach the app.
//
// Dropped, with the threat each stops:
//   - Proxy: it would become HTTP_PROXY, which many HTTP clients take as
//     their outbound proxy (httpoxy, CVE-2016-5385).
//   - names with "_" or any byte but letters, digits and "-": X_User and
//     X-User would both become HTTP_X_USER, so a client could shadow a
//     header set by a trusted proxy in front (header aliasing).
//   - X-Portico-*: only portico may set them (client address, scheme...).
//   - hop-by-hop headers, and those the client's Connection names.
//   - Expect: the body has already been read.
func forwardHeaders(in http.Header) http.Header {
	out := make(http.Header, len(in)+9)
	var connTokens []string
	for _, v := range in["Connection"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				connTokens = append(connTokens, http.CanonicalHeaderKey(t))
			}
		}
	}
	for k, vv := range in {
		if !envSafeName(k) {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		switch ck {
		case "Proxy", "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer",
			"Transfer-Encoding", "Upgrade", "Expect", "Content-Length":
			continue
		}
		if strings.HasPrefix(ck, privatePrefix) {
			continue
		}
		if len(connTokens) > 0 && contains(connTokens, ck) {
			continue
		}
		out[ck] = append(out[ck], vv...)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// envSafeName reports whether a header name maps to exactly one HTTP_*
// variable: only letters, digits and "-".
func envSafeName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func responseHopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// reqBody is a request body read in full: in memory, or spooled to an
// unlinked temp file when large. It can be replayed for a retry.
type reqBody struct {
	mem  []byte
	file *os.File
	size int64
}

func (b *reqBody) reader() io.ReadCloser {
	if b.file != nil {
		return io.NopCloser(io.NewSectionReader(b.file, 0, b.size))
	}
	return io.NopCloser(bytes.NewReader(b.mem))
}

func (b *reqBody) Close() {
	if b.file != nil {
		b.file.Close()
	}
}

// readBody reads r's body to the end (bounded by the server's
// http.MaxBytesReader, which yields *http.MaxBytesError beyond the limit).
func readBody(r *http.Request, dir string) (*reqBody, error) {
	b := &reqBody{}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return b, nil
	}
	initial := int64(4 << 10)
	if r.ContentLength > 0 {
		initial = min(r.ContentLength, memBody)
	}
	buf := bytes.NewBuffer(make([]byte, 0, initial))
	n, err := io.Copy(buf, io.LimitReader(r.Body, memBody+1))
	if err != nil {
		return nil, err
	}
	if n <= memBody {
		b.mem, b.size = buf.Bytes(), n
		return b, nil
	}
	f, err := os.CreateTemp(dir, "body-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // the open descriptor keeps it; nothing is left behind
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return nil, err
	}
	m, err := io.Copy(f, r.Body)
	if err != nil {
		f.Close()
		return nil, err
	}
	b.file, b.size = f, n+m
	return b, nil
}
