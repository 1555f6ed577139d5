// Package static serves files from a folder: conditional and range
// requests, precompressed siblings (.br, .zst, .gz), index files, optional
// directory listings and single-page-app fallback.
//
// Nothing outside the root is ever served. Request paths are checked by the
// helpers in path.go (traversal, encoded separators, NUL, backslashes,
// dotfiles) and every file is opened through an os.Root, which refuses to
// follow ".." or symlinks out of the root.
//
// Speed comes from an open-file cache (entry.go): per cleaned path it keeps
// the metadata, pre-built header values and, for files up to 64 KiB, the
// bytes. A cached path is re-checked with stat at most once a second, so
// edits show up within about a second. Larger files are sent with sendfile.
//
// Both HTTP engines serve the same decisions: answer (conditional.go:
// preconditions, then ranges) picks the status, fileFields (fields.go) the
// header fields; ServeHTTP and the fast path's ServeFast only render them.
package static

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"portico/internal/compress"
	"portico/internal/config"
	"portico/internal/errorpage"
)

// Options are the dependencies of a static handler.
type Options struct {
	Logger *slog.Logger
	// Prefix is the route prefix without its trailing slash ("" for "/").
	// The URL path Prefix+"/a/b" maps to Root/a/b (nginx "alias" semantics).
	Prefix string
	// Fallback, if set, serves requests for which no file exists
	// (quick mode --proxy: files first, then the app).
	Fallback http.Handler
	// Compress, if set, compresses files on the fly (once per file and
	// encoding, kept in the open-file cache).
	Compress *compress.Settings
}

// Handler serves one static route.
type Handler struct {
	root          *os.Root
	rootReal      string   // cfg.Root with symlinks resolved
	hiddenRel     []string // cfg.Hide folders inside the root, relative, slash-separated
	hiddenReal    []string // cfg.Hide folders with symlinks resolved
	index         []string
	browse        bool
	spa           bool
	dotfiles      bool
	precompressed bool
	cacheControl  []string // nil: no Cache-Control header on files

	prefix   string
	fallback http.Handler
	comp     *compress.Settings
	log      *slog.Logger
	cache    fileCache
	closed   atomic.Bool
}

var _ http.Handler = (*Handler)(nil)

// Cache bounds and revalidation interval.
const (
	defaultMaxEntries = 8192
	defaultMaxBytes   = 64 << 20
	revalidateEvery   = time.Second
)

// New validates cfg and builds the handler. The root must exist and be a
// folder. cfg is taken as it is: its defaults must be filled already
// (config.Load does; a hand-built section calls cfg.SetDefaults()).
func New(cfg config.Static, opts Options) (*Handler, error) {
	if cfg.Root == "" {
		return nil, errors.New("static: root is required")
	}
	fi, err := os.Stat(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("static: root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("static: root %s is not a folder", cfg.Root)
	}
	rootReal, err := filepath.EvalSymlinks(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("static: root: %w", err)
	}
	// Defaults are config's (Static.SetDefaults, run by Load): an empty
	// Index means no index files, a nil Precompressed means off. The name
	// check stays: a handler built by hand must not open paths outside.
	index := cfg.Index
	for _, name := range index {
		if !filepath.IsLocal(name) || strings.ContainsAny(name, "\\/\x00") || name == "." {
			return nil, fmt.Errorf("static: index %q: must be a file name", name)
		}
	}
	if p := opts.Prefix; strings.HasSuffix(p, "/") || (p != "" && p[0] != '/') {
		return nil, fmt.Errorf("static: prefix %q: want \"\" or \"/path\" without a trailing slash", p)
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("static: root: %w", err)
	}
	h := &Handler{
		root:          root,
		rootReal:      rootReal,
		index:         index,
		browse:        cfg.Browse,
		spa:           cfg.SPA,
		dotfiles:      cfg.Dotfiles,
		precompressed: cfg.Precompressed != nil && *cfg.Precompressed,
		prefix:        opts.Prefix,
		fallback:      opts.Fallback,
		comp:          opts.Compress,
		log:           opts.Logger,
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if cfg.CacheControl != "" {
		h.cacheControl = []string{cfg.CacheControl}
	}
	for _, hid := range cfg.Hide {
		if r, err := filepath.Rel(cfg.Root, hid); err == nil && filepath.IsLocal(r) || r == "." {
			h.hiddenRel = append(h.hiddenRel, filepath.ToSlash(r))
		}
		real, err := filepath.EvalSymlinks(hid)
		if err != nil {
			real = filepath.Clean(hid)
		}
		h.hiddenReal = append(h.hiddenReal, real)
		if r, err := filepath.Rel(real, rootReal); err == nil && filepath.IsLocal(r) {
			h.log.Warn("static: the whole root is inside a hidden (cgi) folder: no file will be served", "root", cfg.Root, "hidden", hid)
		}
	}
	h.cache = fileCache{
		m:          make(map[string]*node),
		miss:       make(map[string]*node),
		maxEntries: defaultMaxEntries,
		maxBytes:   defaultMaxBytes,
		revalidate: int64(revalidateEvery),
	}
	clockAcquire()
	return h, nil
}

// Close releases the root and the cache; a second call does nothing. It
// has every handler's Close signature; there is nothing to wait for, so
// ctx is not used.
func (h *Handler) Close(context.Context) error {
	if h.closed.Swap(true) {
		return nil
	}
	clockRelease()
	h.cache.clear()
	return h.root.Close()
}

// Pre-built header values, assigned into header maps without allocating.
var (
	hvBytes      = []string{"bytes"}
	hvVaryAE     = []string{"Accept-Encoding"}
	hvNoCache    = []string{"no-cache"}
	hvAllow      = []string{"GET, HEAD"}
	hvAllowOpts  = []string{"GET, HEAD, OPTIONS"}
	hvHTML       = []string{"text/html; charset=utf-8"}
	errNotServed = errors.New("static: not a file")
	// errMissing: no file at the path (ServeHTTP's missing: SPA, the
	// Fallback handler, or 404).
	errMissing = errors.New("static: no such file")
)

// errRedirect is returned by lookup for a folder requested without its
// trailing slash: ServeHTTP answers it with a redirect.
var errRedirect = errors.New("static: folder needs a trailing slash")

// lookup finds the representation a GET or HEAD of a plain file is
// answered with, for the fast path (ServeFast), after picking the
// precompressed variant for acceptEncoding. urlPath is the decoded request
// path (prefix included) and rawPath its escaped form as received ("" when
// it is the canonical escaping, like url.URL.RawPath). Both may point into
// a connection's reused read buffer: lookup copies what the cache keeps.
//
// Any non-nil error means "not a plain file hit": the request then goes to
// ServeHTTP, which answers every other case (404, redirects, listings, SPA
// fallback, the Fallback handler).
func (h *Handler) lookup(urlPath, rawPath, acceptEncoding string, hasRange bool) (*entry, error) {
	rel, slash, ok := cleanTraversalPath(urlPath, h.prefix, h.dotfiles)
	if !ok || hasEncodedSeparator(rawPath) {
		return nil, fs.ErrNotExist
	}
	// The cache keeps the names it loads (entry.relFile, errors' paths),
	// so whenever resolve may load or reload a node, it gets a copy: at
	// most once per revalidation interval per path. The margin covers
	// clock ticks between this check and resolve's own. (Safer still:
	// node() copying rel before load, as it does for keys.)
	if n := h.cache.get(rel); n == nil || coarseNow()+2*int64(clockTick)-n.checked.Load() >= h.cache.revalidate {
		rel = strings.Clone(rel)
	}
	n, kind, err := h.resolve(rel, slash)
	switch kind {
	case resFile:
		return h.pick(n, acceptEncoding, hasRange), nil
	case resRedirect:
		return nil, errRedirect
	case resError:
		return nil, err
	case resMissing:
		return nil, errMissing
	}
	return nil, errNotServed
}

type resKind int

const (
	resMissing resKind = iota
	resFile
	resRedirect
	resListing
	resError
)

// resolve finds what rel names: a file (directly or as a folder's index), a
// folder that needs a redirect or a listing, nothing, or an error.
func (h *Handler) resolve(rel string, slash bool) (*node, resKind, error) {
	n := h.node(rel)
	switch {
	case n.err != nil:
		if errors.Is(n.err, fs.ErrNotExist) {
			return nil, resMissing, nil
		}
		return nil, resError, n.err
	case n.isDir:
		if !slash {
			return nil, resRedirect, nil
		}
		for _, name := range n.indexKeys {
			if in := h.node(name); in.plain != nil {
				return in, resFile, nil
			} else if in.err != nil && !errors.Is(in.err, fs.ErrNotExist) {
				return nil, resError, in.err
			}
		}
		if h.browse {
			return n, resListing, nil
		}
		return nil, resMissing, nil
	case slash:
		return nil, resMissing, nil // "file.txt/"
	}
	return n, resFile, nil
}

// pick chooses the representation of a file for an Accept-Encoding value.
func (h *Handler) pick(n *node, acceptEncoding string, hasRange bool) *entry {
	if n.compress {
		return h.pickCompressed(n, acceptEncoding, hasRange)
	}
	if n.anyEnc && acceptEncoding != "" {
		if i := pickEncoding(acceptEncoding, &n.have); i >= 0 {
			return n.enc[i]
		}
	}
	return n.plain
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !getOrHead && h.fallback == nil {
		h.wrongMethod(w, r)
		return
	}
	rel, slash, ok := cleanTraversalPath(r.URL.Path, h.prefix, h.dotfiles)
	if !ok || (r.URL.RawPath != "" && hasEncodedSeparator(r.URL.RawPath)) {
		h.notFound(w, r)
		return
	}
	n, kind, err := h.resolve(rel, slash)
	if !getOrHead {
		if kind == resMissing {
			h.fallback.ServeHTTP(w, r)
			return
		}
		h.wrongMethod(w, r)
		return
	}
	switch kind {
	case resFile:
		h.serveFile(w, r, n, rel, false)
	case resRedirect:
		h.redirectToSlash(w, r, rel)
	case resListing:
		h.serveListing(w, r, rel, n)
	case resError:
		h.fail(w, r, err)
	default:
		h.missing(w, r)
	}
}

// missing answers a GET or HEAD for a path with no file: the SPA's root
// index for page navigations, else the Fallback handler, else 404. With
// both, a navigation goes to the Fallback first and gets the index only
// when the Fallback says 404 (spafallback.go).
func (h *Handler) missing(w http.ResponseWriter, r *http.Request) {
	if h.spa && acceptsHTML(r.Header["Accept"]) {
		for _, idx := range h.index {
			if in := h.node(idx); in.plain != nil {
				if h.fallback != nil {
					h.spaAfterFallback(w, r, in, idx)
					return
				}
				h.announceAnswer(w, idx)
				h.serveFile(w, r, in, idx, true)
				return
			}
		}
	}
	h.notFound(w, r)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	if h.fallback != nil {
		h.fallback.ServeHTTP(w, r)
		return
	}
	errorpage.Write(w, r, http.StatusNotFound)
}

func (h *Handler) wrongMethod(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		w.Header()["Allow"] = hvAllowOpts
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header()["Allow"] = hvAllow
	errorpage.Write(w, r, http.StatusMethodNotAllowed)
}

// fail maps a file system error to a response, in one place: not found ->
// 404, permission -> 403, anything else -> 500 with the detail logged.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		errorpage.Write(w, r, http.StatusNotFound)
	case errors.Is(err, fs.ErrPermission):
		errorpage.Write(w, r, http.StatusForbidden)
	default:
		h.log.Error("static: serving file", "path", r.URL.Path, "err", err)
		errorpage.Write(w, r, http.StatusInternalServerError)
	}
}

// redirectToSlash sends a folder requested without its trailing slash to
// the slash form, keeping the query.
func (h *Handler) redirectToSlash(w http.ResponseWriter, r *http.Request, rel string) {
	loc := h.prefix + "/"
	if rel != "." {
		loc += escapePath(rel) + "/"
	}
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	hdr := w.Header()
	hdr.Set("Location", loc)
	hdr["Content-Type"] = hvHTML
	w.WriteHeader(http.StatusMovedPermanently)
	if r.Method != http.MethodHead {
		io.WriteString(w, "<a href=\""+htmlEscape(loc)+"\">Moved Permanently</a>.\n")
	}
}

// serveFile answers a GET or HEAD with the file of n: conditional
// requests, ranges, then the body. spa marks the SPA fallback answer, which
// must not be cached as if it were the requested path.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, n *node, rel string, spa bool) {
	var ae string
	if v := r.Header["Accept-Encoding"]; len(v) > 0 {
		ae = v[0]
		if len(v) > 1 {
			ae = strings.Join(v, ",")
		}
	}
	for attempt := 0; ; attempt++ {
		_, hasRange := r.Header["Range"]
		e := h.pick(n, ae, hasRange)
		err := h.serveEntry(w, r, e, spa)
		if err == nil {
			return
		}
		if errors.Is(err, errStale) && attempt == 0 {
			// The file changed since it was cached: reload and retry once.
			n = h.load(rel)
			n.checked.Store(coarseNow())
			h.cache.put(string([]byte(rel)), n)
			if n.plain != nil {
				continue
			}
			err = n.err
		}
		if errors.Is(err, errStale) {
			err = fs.ErrNotExist
		}
		h.fail(w, r, err)
		return
	}
}

// serveEntry writes the response for one representation: answer decides
// it, fileFields its header fields; this only renders them for net/http.
// It returns an error only before anything was written.
func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, spa bool) error {
	fr := requestOf(r)
	var buf [4]byteRange
	status, ranges := answer(&fr, e, buf[:0])
	var f *os.File
	if e.Body == nil && r.Method != http.MethodHead && (status == http.StatusOK || status == http.StatusPartialContent) {
		var err error
		if f, err = e.Open(); err != nil {
			return err
		}
		defer f.Close()
	}
	cc := h.cacheControl
	if spa {
		cc = hvNoCache
	}
	var rng byteRange
	if len(ranges) == 1 {
		rng = ranges[0]
	}
	setFields(w.Header(), fileFields(status, len(ranges) > 1, e, cc != nil), e, cc, rng)
	switch {
	case status == http.StatusPreconditionFailed, status == http.StatusRequestedRangeNotSatisfiable:
		errorpage.Write(w, r, status)
	case len(ranges) > 1:
		h.writeMultipart(w, e, f, ranges)
	default:
		w.WriteHeader(status)
		if status == http.StatusOK && r.Method != http.MethodHead {
			h.writeBody(w, e, f, 0, e.Size)
		} else if status == http.StatusPartialContent {
			h.writeBody(w, e, f, rng.start, rng.length)
		}
	}
	return nil
}

// writeBody sends length bytes from start, from memory or with sendfile.
func (h *Handler) writeBody(w http.ResponseWriter, e *entry, f *os.File, start, length int64) {
	if e.Body != nil {
		w.Write(e.Body[start : start+length])
		return
	}
	if start != 0 {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			h.log.Warn("static: seek", "file", e.relFile, "err", err)
			return
		}
	}
	// An *io.LimitedReader around an *os.File lets net/http use sendfile;
	// the limit also keeps a file that grew from overrunning Content-Length.
	if _, err := io.Copy(w, &io.LimitedReader{R: f, N: length}); err != nil {
		h.log.Debug("static: write", "file", e.relFile, "err", err)
	}
}

// writeMultipart answers several ranges with multipart/byteranges
// (RFC 9110 14.6), with an exact Content-Length.
func (h *Handler) writeMultipart(w http.ResponseWriter, e *entry, f *os.File, ranges []byteRange) {
	boundary := strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
	heads := make([]string, len(ranges))
	var total int64
	for i, rg := range ranges {
		sep := "\r\n--"
		if i == 0 {
			sep = "--"
		}
		heads[i] = sep + boundary + "\r\nContent-Type: " + e.ContentType[0] +
			"\r\nContent-Range: " + contentRange(rg, e.Size) + "\r\n\r\n"
		total += int64(len(heads[i])) + rg.length
	}
	tail := "\r\n--" + boundary + "--\r\n"
	total += int64(len(tail))
	hdr := w.Header()
	hdr.Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	hdr.Set("Content-Length", strconv.FormatInt(total, 10))
	w.WriteHeader(http.StatusPartialContent)
	for i, rg := range ranges {
		io.WriteString(w, heads[i])
		h.writeBody(w, e, f, rg.start, rg.length)
	}
	io.WriteString(w, tail)
}

// escapePath escapes each segment of a slash-separated path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = urlPathEscape(s)
	}
	return strings.Join(segs, "/")
}

var htmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")

func htmlEscape(s string) string { return htmlReplacer.Replace(s) }

// announceAnswer tells the route's header rules (a layer's writer) that
// this response is the SPA's index file rel, so rules matching its path
// apply.
func (h *Handler) announceAnswer(w http.ResponseWriter, rel string) {
	if mp, ok := w.(interface{ SetMatchPath(string) }); ok {
		mp.SetMatchPath(h.prefix + "/" + rel)
	}
}

// AnswerPath is the path of the SPA's answer for a missing page ("" when
// spa is off): header rules that match it apply to that answer
// (layer.AnswerPather).
func (h *Handler) AnswerPath() string {
	if !h.spa || len(h.index) == 0 {
		return ""
	}
	return h.prefix + "/" + h.index[0]
}
