package fastcgi

import (
	"net/http"
	"strings"

	"portico/internal/errorpage"
	"portico/internal/fastpath"
)

var _ fastpath.Handler = (*Handler)(nil)

// ServeFast serves the route on the fast path: the static files (the
// asset requests of a PHP site: /css/app.css, /img/logo.png) through the
// static handler's own fast path, the scripts of GET and HEAD requests
// from HTTP/1.1 clients (the front controller's pretty URLs, the bulk of
// a PHP site's requests) through fastscript.go, and the 404 and 403 of
// paths that run nothing. What it declines (a folder's redirect, an
// HTTP/1.0 client, a file the static handler has no fast answer for)
// goes to ServeHTTP, which answers it as ever.
func (h *Handler) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if h.isClosed.Load() {
		return false
	}
	t := h.resolve(req.Path)
	switch t.kind {
	case serveFile:
		return h.serveFileFast(req, w)
	case runScript:
		return h.serveScriptFast(req, w, t)
	case notFound, forbidden:
		return errorpage.Default(statusOf(t.kind)).WriteFast(w, req)
	}
	return false
}

// FilesOnly is the handler's fast path for static files alone (the
// handler's original fast path): for a route whose scripts' answers go
// through a wrapper the fast path cannot apply (on-the-fly compression),
// so that every script runs on net/http's path, inside it.
func (h *Handler) FilesOnly() fastpath.Handler { return filesOnly{h} }

type filesOnly struct{ h *Handler }

// ServeFast serves hits of the static handler. Only a path whose last
// segment has a dot is looked up, so pretty URLs (/posts/42) cost no
// extra stat.
func (f filesOnly) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	h := f.h
	if h.isClosed.Load() {
		return false
	}
	last := req.Path[strings.LastIndexByte(req.Path, '/')+1:]
	if strings.IndexByte(last, '.') < 0 || hasFoldedSuffix(last, h.split) {
		return false
	}
	if h.resolve(req.Path).kind != serveFile {
		return false
	}
	return h.serveFileFast(req, w)
}

// serveFileFast answers a request for an existing file that is not a
// script through the static handler's fast path, hits only: a miss is
// left to net/http's path.
func (h *Handler) serveFileFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	fh, ok := h.files.(interface {
		ServeFastHit(*fastpath.Request, *fastpath.ResponseWriter) bool
	})
	return ok && fh.ServeFastHit(req, w)
}

// errorPageSafe reports whether the error pages of the fast path answer
// as net/http's would with these site headers (errorpage.WriteFast): a
// script's failure is known only once it ran, too late to decline.
func errorPageSafe(defaults [][2]string) bool {
	for _, kv := range defaults {
		switch kv[0] {
		case "Content-Length", "Content-Encoding", "Etag", "Last-Modified":
			return false
		}
	}
	return true
}

// writeErrorFast sends the error page of status on the fast path, with
// Retry-After when asked; status 0 (nobody listens) abandons the
// response.
func writeErrorFast(w *fastpath.ResponseWriter, req *fastpath.Request, status int, retryAfter bool) {
	if status == 0 {
		w.Abort()
		return
	}
	var lines []byte
	if retryAfter {
		lines = retryAfterLine
	}
	errorpage.Default(status).WriteFastFields(w, req, lines, false)
}

var retryAfterLine = []byte("Retry-After: 1\r\n")

// statusHasBody reports whether a response of status carries a body.
func statusHasBody(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}
