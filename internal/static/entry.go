package static

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// entry is one servable file (or one precompressed variant of it) as plain
// data, independent of net/http: its metadata, pre-built header values and,
// for small files, the bytes themselves. Entries are immutable once built
// and shared by concurrent requests: never modify one or its slices.
//
// Header values are []string of one element so that the handler can assign
// them straight into an http.Header without allocating. Head holds the same
// headers rendered as HTTP/1.1 lines ("Content-Type: text/css\r\n..."),
// ending in "\r\n" after the last line but without the empty line that ends
// a header block, for an engine that writes responses itself.
type entry struct {
	Name     string    // slash-separated path of the file relative to the root
	Size     int64     // bytes of this representation (encoded, for a variant)
	ModTime  time.Time // of this representation
	Encoding string    // "" or "br", "zstd", "gzip" (Content-Encoding)
	Vary     bool      // the file has precompressed siblings: send Vary: Accept-Encoding

	// Body is the whole content when Size <= the in-memory limit (64 KiB);
	// nil for larger files, which are opened per request with Open.
	Body []byte

	ContentType     []string
	ETag            []string
	LastModified    []string
	ContentLength   []string
	ContentEncoding []string // nil for the unencoded file
	Head            []byte

	root    *os.Root
	relFile string // path to open: Name plus the encoding's extension
}

// Open opens the file of a large entry (one without Body) for reading and
// checks that it is still the file the entry describes; if it changed, it
// returns an error wrapping errStale and the caller should look it up again.
// The caller closes the file.
func (e *entry) Open() (*os.File, error) {
	f, err := e.root.Open(e.relFile)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != e.Size || !fi.ModTime().Equal(e.ModTime) {
		f.Close()
		return nil, errStale
	}
	return f, nil
}

var errStale = errors.New("static: file changed while being served")

// smallFileLimit is the largest file kept in memory.
const smallFileLimit = 64 << 10

// node is a cache slot: what one cleaned path is on disk right now.
type node struct {
	checked atomic.Int64 // unix nanos of the last stat
	err     error        // fs.ErrNotExist, fs.ErrPermission or an I/O error
	isDir   bool
	modTime time.Time // of a directory
	// indexKeys are the cache keys of a directory's index files, in order.
	indexKeys []string
	plain     *entry
	enc       [numEnc]*entry // precompressed siblings, nil where absent
	have      [numEnc]bool
	anyEnc    bool
	cost      int64 // bytes held in memory
	cached    bool  // counted in fileCache.bytes (guarded by its mu)
	dyn       dynVariants
	// compress: the file is compressed on the fly (Handler.compressible).
	compress bool
}

// sig is what revalidation compares: one file's identity.
type sig struct {
	exists bool
	dir    bool
	size   int64
	mtime  int64
}

// fileCache is the open-file / metadata cache: cleaned path -> node. Nodes
// are re-checked with stat at most once per revalidate interval, so edits
// show up within that time. Paths that exist (files, folders) and paths
// that do not are kept apart, so that a flood of requests for random
// missing paths cannot push the hot files out: the first map holds at most
// maxEntries nodes and maxBytes of file content, the second maxEntries/4
// nodes. Beyond a bound, arbitrary nodes are evicted (Go's map iteration
// order is random, which makes this random eviction).
type fileCache struct {
	mu         sync.RWMutex
	m          map[string]*node // files and folders
	miss       map[string]*node // missing paths and errors
	bytes      int64
	maxEntries int
	maxBytes   int64
	revalidate int64 // nanoseconds
}

func (c *fileCache) get(key string) *node {
	c.mu.RLock()
	n, ok := c.m[key]
	if !ok {
		n = c.miss[key]
	}
	c.mu.RUnlock()
	return n
}

func (c *fileCache) put(key string, n *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		c.bytes -= old.cost
		old.cached = false
		delete(c.m, key)
	}
	delete(c.miss, key)
	if n.err != nil {
		for k := range c.miss {
			if len(c.miss) < max(c.maxEntries/4, 1) {
				break
			}
			delete(c.miss, k)
		}
		c.miss[key] = n
		return
	}
	for k, v := range c.m {
		if len(c.m) < c.maxEntries && c.bytes+n.cost <= c.maxBytes {
			break
		}
		delete(c.m, k)
		c.bytes -= v.cost
		v.cached = false
	}
	c.m[key] = n
	c.bytes += n.cost
	n.cached = true
}

func (c *fileCache) clear() {
	c.mu.Lock()
	c.m = make(map[string]*node)
	c.miss = make(map[string]*node)
	c.bytes = 0
	c.mu.Unlock()
}

// node returns the cache slot for rel, loading or revalidating it as needed.
func (h *Handler) node(rel string) *node {
	n := h.cache.get(rel)
	now := coarseNow()
	if n != nil {
		last := n.checked.Load()
		if now-last < h.cache.revalidate || !n.checked.CompareAndSwap(last, now) {
			return n // fresh, or another request is revalidating it
		}
		if h.unchanged(rel, n) {
			return n
		}
	}
	// From here rel is kept (in the entry and as the cache key): copy it,
	// since on the fast path it points into a connection's reused buffer.
	rel = strings.Clone(rel)
	n = h.load(rel)
	n.checked.Store(now)
	if len(rel) <= 1024 {
		h.cache.put(rel, n)
	}
	return n
}

// statSig stats name inside the root.
func (h *Handler) statSig(name string) sig {
	fi, err := h.root.Stat(name)
	if err != nil {
		return sig{}
	}
	return sig{true, fi.IsDir(), fi.Size(), fi.ModTime().UnixNano()}
}

func entrySig(e *entry) sig {
	if e == nil {
		return sig{}
	}
	return sig{true, false, e.Size, e.ModTime.UnixNano()}
}

// unchanged re-stats the files behind n and reports whether they are as
// cached.
func (h *Handler) unchanged(rel string, n *node) bool {
	s := h.statSig(rel)
	switch {
	case n.err != nil:
		return !s.exists && errors.Is(n.err, fs.ErrNotExist)
	case n.isDir:
		return s.exists && s.dir && s.mtime == n.modTime.UnixNano()
	}
	if s != entrySig(n.plain) {
		return false
	}
	if h.precompressed {
		for i := 0; i < numEnc; i++ {
			if h.statSig(rel+encExts[i]) != entrySig(n.enc[i]) {
				return false
			}
		}
	}
	return true
}

// load builds the node of rel from the file system.
func (h *Handler) load(rel string) *node {
	if hiddenRel(rel, h.hiddenRel) {
		return &node{err: fs.ErrNotExist}
	}
	fi, err := h.root.Stat(rel)
	if err != nil {
		return &node{err: classify(err)}
	}
	if h.resolvesIntoHidden(rel) {
		return &node{err: fs.ErrNotExist}
	}
	if fi.IsDir() {
		keys := make([]string, len(h.index))
		for i, idx := range h.index {
			keys[i] = idx
			if rel != "." {
				keys[i] = rel + "/" + idx
			}
		}
		return &node{isDir: true, modTime: fi.ModTime(), indexKeys: keys}
	}
	if !fi.Mode().IsRegular() {
		// FIFOs, devices, sockets: never opened (a FIFO would block).
		return &node{err: fs.ErrNotExist}
	}
	n := &node{}
	plain, err := h.loadEntry(rel, rel, "", "")
	if err != nil {
		return &node{err: classify(err)}
	}
	n.plain = plain
	n.cost = int64(len(plain.Body))
	if h.precompressed {
		for i := 0; i < numEnc; i++ {
			name := rel + encExts[i]
			if fi, err := h.root.Stat(name); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			e, err := h.loadEntry(rel, name, encTokens[i], plain.ContentType[0])
			if err != nil {
				continue
			}
			n.enc[i], n.have[i], n.anyEnc = e, true, true
			n.cost += int64(len(e.Body))
		}
	}
	n.compress = h.compressible(plain)
	if n.anyEnc || n.compress {
		plain.Vary = true
		plain.Head = buildHead(plain, h.cacheControl)
		for _, e := range n.enc {
			if e != nil {
				e.Vary = true
				e.Head = buildHead(e, h.cacheControl)
			}
		}
	}
	return n
}

// loadEntry reads one file's metadata (and, if small, its bytes). ctype is
// the Content-Type to use, "" to derive it from name and content.
func (h *Handler) loadEntry(name, file, encoding, ctype string) (*entry, error) {
	f, err := h.root.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	e := &entry{
		Name:     name,
		Size:     fi.Size(),
		ModTime:  fi.ModTime(),
		Encoding: encoding,
		root:     h.root,
		relFile:  file,
	}
	var head []byte
	if e.Size <= smallFileLimit {
		body := make([]byte, e.Size)
		if _, err := io.ReadFull(f, body); err != nil {
			return nil, err
		}
		e.Body = body
		head = body
	} else if ctype == "" {
		head = make([]byte, 512)
		k, _ := io.ReadFull(f, head)
		head = head[:k]
	}
	if ctype == "" {
		ctype = contentType(name, head)
	}
	e.ContentType = []string{ctype}
	etag := make([]byte, 0, 40)
	etag = append(etag, '"')
	etag = strconv.AppendInt(etag, e.Size, 16)
	etag = append(etag, '-')
	etag = strconv.AppendInt(etag, e.ModTime.UnixNano(), 16)
	if encoding != "" {
		etag = append(etag, '-')
		etag = append(etag, encoding...)
		e.ContentEncoding = []string{encoding}
	}
	etag = append(etag, '"')
	e.ETag = []string{string(etag)}
	e.LastModified = []string{e.ModTime.UTC().Format(http.TimeFormat)}
	e.ContentLength = []string{strconv.FormatInt(e.Size, 10)}
	e.Head = buildHead(e, h.cacheControl)
	return e, nil
}

// classify maps a file system error to fs.ErrNotExist (missing, or not
// reachable inside the root: a symlink escaping it, a file used as a
// folder, a symlink loop, a name too long), fs.ErrPermission, or itself.
func classify(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENAMETOOLONG),
		errors.Is(err, syscall.EINVAL), isPathEscape(err):
		return fs.ErrNotExist
	case errors.Is(err, fs.ErrPermission):
		return fs.ErrPermission
	}
	return err
}

// isPathEscape reports whether err is os.Root's refusal to follow a path
// out of the root ("path escapes from parent"; the error is not exported).
func isPathEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent"
}

// resolvesIntoHidden reports whether rel, with symlinks resolved, lands in
// a hidden folder (a symlink in the static root pointing into the cgi root).
func (h *Handler) resolvesIntoHidden(rel string) bool {
	if len(h.hiddenReal) == 0 {
		return false
	}
	real, err := filepath.EvalSymlinks(filepath.Join(h.rootReal, filepath.FromSlash(rel)))
	if err != nil {
		return true // cannot tell: refuse
	}
	for _, hid := range h.hiddenReal {
		if r, err := filepath.Rel(hid, real); err == nil && filepath.IsLocal(r) || real == hid {
			return true
		}
	}
	return false
}
