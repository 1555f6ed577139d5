package static

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"portico/internal/fastpath"
)

var _ fastpath.Handler = (*Handler)(nil)

// ServeFast answers, on portico's fast path (package fastpath), the
// requests that are plain hits of the open-file cache: a GET or HEAD of a
// regular file (directly or as a folder's index), its precompressed
// variant by Accept-Encoding, If-None-Match / If-Modified-Since answered
// with 304, and a single satisfiable Range. Everything else (a missing
// file, redirects, listings, SPA fallback, If-Match, If-Unmodified-Since,
// several ranges, an unsatisfiable range, an error) returns false before
// writing anything, and net/http's path (ServeHTTP) answers it.
//
// The response carries the same status and header fields as ServeHTTP's
// (Content-Type, Content-Length, ETag, Last-Modified, Accept-Ranges,
// Content-Encoding, Vary, Cache-Control; for 206 Content-Range), and the
// same body. req.Path must be the full decoded request path, the route
// prefix included (the prefix is not stripped for static routes).
func (h *Handler) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if req.IfMatch != "" || req.IfUnmodifiedSince != "" {
		return false
	}
	rel, slash, ok := cleanTraversalPath(req.Path, h.prefix, h.dotfiles)
	if !ok || hasEncodedSeparator(req.RawPath) {
		return false
	}
	// rel points into the connection's read buffer, which is reused after
	// this request. The cache keeps the names it loads (Entry.relFile,
	// errors' paths), so whenever resolve may load or reload a node, it
	// gets a copy: at most once per revalidation interval per path. The
	// margin covers clock ticks between this check and resolve's own.
	// (Safer still: node() copying rel before load, as it does for keys.)
	if n := h.cache.get(rel); n == nil || coarseNow()+2*int64(clockTick)-n.checked.Load() >= h.cache.revalidate {
		rel = strings.Clone(rel)
	}
	n, kind, _ := h.resolve(rel, slash)
	if kind != resFile {
		return false
	}
	e := h.pick(n, req.AcceptEncoding)
	get := req.Method == http.MethodGet

	// Preconditions, as checkPreconditions for a GET or HEAD without
	// If-Match and If-Unmodified-Since.
	notModified := false
	if req.IfNoneMatch != "" {
		notModified = etagListMatch([]string{req.IfNoneMatch}, e.ETag[0], true)
	} else if req.IfModifiedSince != "" {
		if t, err := http.ParseTime(req.IfModifiedSince); err == nil && !e.ModTime.Truncate(time.Second).After(t) {
			notModified = true
		}
	}
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		w.AddHeader("ETag", e.ETag[0])
		w.AddHeader("Last-Modified", e.LastModified[0])
		h.addVaryCache(w, e)
		return true
	}

	var rng byteRange
	partial := false
	if req.Range != "" && get && e.Size > 0 {
		var ifRange []string
		if req.IfRange != "" {
			ifRange = []string{req.IfRange}
		}
		if ifRangeAllows(ifRange, e) {
			var buf [1]byteRange
			ranges, res := parseRanges(req.Range, e.Size, buf[:0])
			switch {
			case res == rangeUnsatisfiable, len(ranges) > 1:
				return false // 416 or multipart: net/http's path
			case len(ranges) == 1:
				rng, partial = ranges[0], true
			}
		}
	}

	var f *os.File
	if e.Body == nil && get {
		var err error
		if f, err = e.Open(); err != nil {
			return false // stale or gone: ServeHTTP reloads and retries
		}
		defer f.Close()
		if partial && rng.start != 0 {
			if _, err := f.Seek(rng.start, 0); err != nil {
				return false
			}
		}
	}

	if !partial {
		w.WriteHeader(http.StatusOK)
		w.AddHeaderLines(e.Head)
		if !get {
			return true
		}
		if f == nil {
			w.Write(e.Body)
		} else {
			w.SendFile(f, e.Size)
		}
		return true
	}

	w.WriteHeader(http.StatusPartialContent)
	w.AddHeader("Content-Type", e.ContentType[0])
	var cr [64]byte
	w.AddHeaderBytes("Content-Range", appendContentRange(cr[:0], rng, e.Size))
	w.AddHeaderInt("Content-Length", rng.length)
	w.AddHeader("ETag", e.ETag[0])
	w.AddHeader("Last-Modified", e.LastModified[0])
	w.AddHeader("Accept-Ranges", "bytes")
	if e.Encoding != "" {
		w.AddHeader("Content-Encoding", e.Encoding)
	}
	h.addVaryCache(w, e)
	if f == nil {
		w.Write(e.Body[rng.start : rng.start+rng.length])
	} else {
		w.SendFile(f, rng.length)
	}
	return true
}

// addVaryCache adds the Vary and Cache-Control fields serveEntry sets.
func (h *Handler) addVaryCache(w *fastpath.ResponseWriter, e *Entry) {
	if e.Vary {
		w.AddHeader("Vary", "Accept-Encoding")
	}
	if h.cacheControl != nil {
		w.AddHeader("Cache-Control", h.cacheControl[0])
	}
}

// appendContentRange appends "bytes a-b/size", as contentRange formats it.
func appendContentRange(b []byte, r byteRange, size int64) []byte {
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.start+r.length-1, 10)
	b = append(b, '/')
	return strconv.AppendInt(b, size, 10)
}
