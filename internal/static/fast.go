package static

import (
	"errors"
	"io/fs"
	"net/http"
	"os"

	"portico/internal/errorpage"
	"portico/internal/fastpath"
)

var _ fastpath.Handler = (*Handler)(nil)

// ServeFast answers, on portico's fast path (package fastpath), the
// requests that are plain hits of the open-file cache: a GET or HEAD of a
// regular file (directly or as a folder's index), its precompressed
// variant by Accept-Encoding, with the same decision as ServeHTTP's
// (answer: preconditions, then ranges) when it comes to 200, 304 or a
// single range, and when it comes to the error pages ServeHTTP would send
// as they are: 404 (a missing file or an unservable path, unless the SPA
// index or a Fallback handler answers it), 403, 412 and 416, each page
// rendered once (errorpage.Page). Everything else (redirects, listings,
// the SPA index, the Fallback handler, several ranges, a 500) returns
// false before writing anything, and net/http's path (ServeHTTP) answers
// it.
//
// The header fields are fileFields' for the status, as ServeHTTP's, and
// the body is the same. req.Path must be the full decoded request path,
// the route prefix included (the prefix is not stripped for static
// routes).
func (h *Handler) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	e, err := h.lookup(req.Path, req.RawPath, req.AcceptEncoding, req.Range != "")
	if err != nil {
		return h.serveFastError(req, w, err)
	}
	return h.serveFastEntry(req, w, e)
}

// ServeFastHit is ServeFast for plain hits only: every error, a missing
// file included, is declined. For a handler that serves the files of
// another route kind and answers their misses itself (fastcgi's assets).
func (h *Handler) ServeFastHit(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	e, err := h.lookup(req.Path, req.RawPath, req.AcceptEncoding, req.Range != "")
	if err != nil {
		return false
	}
	return h.serveFastEntry(req, w, e)
}

// serveFastError answers what lookup found instead of a file, when
// ServeHTTP would answer it with a plain error page: a missing file (no
// SPA navigation, no Fallback handler), a path that can never be served,
// a file it may not read. It declines everything else (redirects,
// listings, the SPA index, the Fallback handler, a 500 that ServeHTTP
// logs).
func (h *Handler) serveFastError(req *fastpath.Request, w *fastpath.ResponseWriter, err error) bool {
	if h.fallback != nil {
		return false
	}
	status := http.StatusNotFound
	switch {
	case err == errMissing:
		if h.spa && acceptsHTMLValue(req.Accept) {
			return false // the SPA's index, on net/http's path
		}
	case errors.Is(err, fs.ErrNotExist):
		// An unservable path (traversal, dotfile, encoded separator)
		// or a file gone meanwhile: ServeHTTP's notFound or fail.
	case errors.Is(err, fs.ErrPermission):
		status = http.StatusForbidden
	default:
		return false
	}
	return errorpage.Default(status).WriteFast(w, req)
}

func (h *Handler) serveFastEntry(req *fastpath.Request, w *fastpath.ResponseWriter, e *entry) bool {
	get := req.Method == http.MethodGet

	fr := fileRequest{
		method:            req.Method,
		ifMatch:           req.IfMatch,
		ifUnmodifiedSince: req.IfUnmodifiedSince,
		ifNoneMatch:       req.IfNoneMatch,
		ifModifiedSince:   req.IfModifiedSince,
		rangeSpec:         req.Range,
		ifRange:           req.IfRange,
	}
	var buf [1]byteRange
	status, ranges := answer(&fr, e, buf[:0])
	var rng byteRange
	switch {
	case status == http.StatusNotModified:
		w.WriteHeader(status)
		h.addFields(w, fileFields(status, false, e, h.cacheControl != nil), e, rng)
		return true
	case status == http.StatusPartialContent && len(ranges) == 1:
		rng = ranges[0]
	case status == http.StatusPreconditionFailed, status == http.StatusRequestedRangeNotSatisfiable:
		// serveEntry's answer: the file's fields for the status, then
		// the error page.
		set := fileFields(status, false, e, h.cacheControl != nil)
		var buf [256]byte
		lines := appendFields(buf[:0], set, e, h.cacheControlValue(), rng)
		return errorpage.Default(status).WriteFastFields(w, req, lines, set&fCacheControl != 0)
	case status != http.StatusOK:
		return false // multipart: net/http's path
	}

	var f *os.File
	if e.Body == nil && get {
		var err error
		if f, err = e.Open(); err != nil {
			return false // stale or gone: ServeHTTP reloads and retries
		}
		defer f.Close()
		if rng.start != 0 {
			if _, err := f.Seek(rng.start, 0); err != nil {
				return false
			}
		}
	}

	w.WriteHeader(status)
	if status == http.StatusOK {
		w.AddHeaderLines(e.Head) // fileFields' 200 set, rendered once per entry
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
	h.addFields(w, fileFields(status, false, e, h.cacheControl != nil), e, rng)
	if f == nil {
		w.Write(e.Body[rng.start : rng.start+rng.length])
	} else {
		w.SendFile(f, rng.length)
	}
	return true
}

// addFields renders set with appendFields into w, through a buffer on the
// stack.
func (h *Handler) addFields(w *fastpath.ResponseWriter, set fieldSet, e *entry, rng byteRange) {
	var buf [512]byte
	w.AddHeaderLines(appendFields(buf[:0], set, e, h.cacheControlValue(), rng))
}

// cacheControlValue is the configured Cache-Control of files, "" if none.
func (h *Handler) cacheControlValue() string {
	if h.cacheControl == nil {
		return ""
	}
	return h.cacheControl[0]
}
