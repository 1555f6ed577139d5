// Package fastcgi runs PHP (or any FastCGI responder) through php-fpm: the
// nginx habit of fastcgi_pass + try_files + a front controller, in one
// route:
//
//	fastcgi = { upstream = "unix:/run/php/php8.2-fpm.sock", root = "public", index = "index.php", split_path = ".php" }
//
// A request path is resolved under the root (see resolve): a script runs
// with SCRIPT_NAME and PATH_INFO split after the first ".php" segment; an
// existing file that is not a script goes to Options.Files (a static
// handler over the same root); anything else runs the index script, the
// front controller of pretty URLs.
//
// The protocol layer is portico's own (record.go): one request at a time
// per connection, FCGI_KEEP_CONN, a bounded pool (pool.go) whose
// connections are reused only after a response that ended cleanly. The
// request body is streamed to FCGI_STDIN while the response is read
// (chunked bodies are spooled first, to give CONTENT_LENGTH), and the
// response is streamed to the client as php-fpm sends it: what php
// flush()es reaches the client at once. The response header block is
// parsed by the CGI handler's parser, the parameters built with its
// rules (no HTTP_PROXY, no headers with "_"). FCGI_STDERR goes to the
// error log, tagged with the script.
package fastcgi

import (
	"portico/internal/clientip"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portico/internal/config"
	"portico/internal/errorpage"
)

// Options are the dependencies of a FastCGI handler.
type Options struct {
	Logger *slog.Logger
	// Prefix is the route prefix without its trailing slash: the URL path
	// Prefix+"/x.php" runs Root/x.php with SCRIPT_NAME Prefix+"/x.php".
	Prefix string
	// Files serves the requests for existing files under the root that
	// are not scripts (nginx's try_files $uri): a static handler over the
	// same root. nil answers them 404.
	Files http.Handler
	// Clients decides REMOTE_ADDR (X-Forwarded-For through trusted
	// proxies), as for CGI.
	Clients *clientip.Resolver
}

// Handler serves one fastcgi route. It is safe for concurrent use.
type Handler struct {
	root        string
	fsroot      *os.Root
	prefix      string
	index       string
	indexName   string // prefix + "/" + index: the front controller's SCRIPT_NAME
	split       string
	env         [][2]string
	readTimeout time.Duration
	upstream    string
	pool        *pool
	files       http.Handler
	log         *slog.Logger

	mu       sync.Mutex
	closed   bool
	isClosed atomic.Bool
	active   sync.WaitGroup
	clients  *clientip.Resolver // REMOTE_ADDR rules (cgi.EndpointsOf)
}

var _ http.Handler = (*Handler)(nil)

// New builds the handler from a loaded section (defaults applied and
// validated by internal/config). It opens the root; it does not connect:
// php-fpm may start after portico, and a request while it is down is a 502.
func New(cfg config.FastCGI, opts Options) (*Handler, error) {
	network, address, err := config.ParseFastCGIUpstream(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("fastcgi upstream %q: %w", cfg.Upstream, err)
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("fastcgi root %s: %w", cfg.Root, err)
	}
	fsroot, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("fastcgi root: %w", err)
	}
	prefix := strings.TrimSuffix(opts.Prefix, "/")
	h := &Handler{
		root:        root,
		fsroot:      fsroot,
		prefix:      prefix,
		index:       cfg.Index,
		indexName:   prefix + "/" + cfg.Index,
		split:       cfg.SplitPath,
		readTimeout: cfg.ReadTimeout.D(),
		upstream:    cfg.Upstream,
		pool:        newPool(network, address, max(cfg.MaxConns, 1), cfg.ConnectTimeout.D(), cfg.ReadTimeout.D()),
		files:       opts.Files,
		clients:     opts.Clients,
		log:         opts.Logger,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.env = append(h.env, [2]string{k, cfg.Env[k]})
	}
	return h, nil
}

// ServeHTTP resolves the request path and runs the script it names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.isClosed.Load() {
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return
	}
	t := h.resolve(r.URL.Path)
	switch t.kind {
	case runScript:
	case serveFile:
		if h.files != nil {
			h.files.ServeHTTP(w, r)
		} else {
			errorpage.Write(w, r, http.StatusNotFound)
		}
		return
	case redirectSlash:
		loc := r.URL.EscapedPath() + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		errorpage.Write(w, r, http.StatusMovedPermanently)
		return
	default:
		errorpage.Write(w, r, statusOf(t.kind))
		return
	}
	if !h.enter() {
		errorpage.Write(w, r, http.StatusServiceUnavailable)
		return
	}
	defer h.active.Done()

	body, clen, cleanup, status := h.requestBody(r, t)
	if status != 0 {
		if status > 0 {
			errorpage.Write(w, r, status)
		}
		return
	}
	defer cleanup()
	h.serve(w, r, t, body, clen)
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

// Close stops taking requests, waits for those in flight (or ctx), and
// closes the pooled connections and the root.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.isClosed.Store(true)
	h.mu.Unlock()
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
	}
	h.pool.close()
	if err == nil {
		h.fsroot.Close()
	}
	return err
}

// errCanceled is what a read or write of a killed connection returns.
var errCanceled = errors.New("fastcgi: connection abandoned")
