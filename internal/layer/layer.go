// Package layer runs route-level middleware (header rules today; access
// control, rate limits and the like tomorrow) on both of portico's
// HTTP/1.1 engines from one implementation.
//
// A Layer is written once, against two small views that both engines
// provide without allocating: Request (what a layer may read of the
// request) and HeaderEditor (what it may do to the final response's
// header). Chain puts layers around a route's handler and is itself an
// http.Handler and a fastpath.Handler: a route with layers stays on the
// fast path whenever its handler does.
//
//	h := layer.Chain(routeHandler, rules)   // rules: a *HeaderRules
//
// On net/http, Chain wraps the ResponseWriter (keeping http.Flusher,
// http.Hijacker and io.ReaderFrom, so streaming and sendfile survive) and
// edits the header map when the final status is written. On the fast
// path it installs a fastpath.HeaderFilter, which the engine calls when
// the header block ends. Either way the edit happens after the handler's
// own fields and the site's headers, on the final response only (never a
// 1xx).
package layer

import (
	"net/http"

	"portico/internal/fastpath"
)

// Request is what a layer reads of a request, on either engine.
type Request interface {
	// Method is the request method.
	Method() string
	// Path is the decoded request path, the route prefix included.
	Path() string
}

// HeaderEditor edits the header fields of a final response before they
// are sent. Names are canonical; framing fields (Content-Length,
// Transfer-Encoding, Connection) are never edited (config refuses rules
// that name them).
type HeaderEditor interface {
	AddHeader(name, value string)
	ReplaceHeader(name, value string)
	DelHeader(name string)
}

// Layer is one route-level middleware.
type Layer interface {
	// EditHeader edits the final response to r, whose status is status.
	EditHeader(r Request, status int, h HeaderEditor)
	// EditsHeader reports whether EditHeader may change anything for a
	// request to path: when no layer does, the engines skip the
	// wrapping altogether.
	EditsHeader(path string) bool
}

// chained is a route's handler with its layers; build it with Chain.
type chained struct {
	next   http.Handler
	fast   fastpath.Handler // next's fast path, nil if it has none
	layers []Layer
}

var (
	_ http.Handler     = (*chained)(nil)
	_ fastpath.Handler = (*chained)(nil)
)

// Chain returns next with layers around it (the first one outermost), or
// next itself when there are none.
func Chain(next http.Handler, layers ...Layer) http.Handler {
	if len(layers) == 0 {
		return next
	}
	h := &chained{next: next, layers: layers}
	h.fast, _ = next.(fastpath.Handler)
	return h
}

// Unwrap returns the handler inside the layers.
func (h *chained) Unwrap() http.Handler { return h.next }

func (h *chained) editsHeader(path string) bool {
	for _, l := range h.layers {
		if l.EditsHeader(path) {
			return true
		}
	}
	return false
}

// editHeader runs every layer's EditHeader, in order.
func (h *chained) editHeader(r Request, status int, e HeaderEditor) {
	for _, l := range h.layers {
		l.EditHeader(r, status, e)
	}
}

// ServeHTTP serves r through the layers on net/http.
func (h *chained) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.editsHeader(r.URL.Path) {
		h.next.ServeHTTP(w, r)
		return
	}
	hw := &headerWriter{w: w, h: h, r: httpRequest{r}}
	h.next.ServeHTTP(hw, r)
}

// ServeFast serves req through the layers on the fast path, or declines
// (returns false) when the handler inside does.
func (h *chained) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if h.fast == nil {
		return false
	}
	if h.editsHeader(req.Path) {
		w.SetHeaderFilter((*fastFilter)(h))
	}
	if !h.fast.ServeFast(req, w) {
		w.SetHeaderFilter(nil)
		return false
	}
	return true
}

// fastFilter is the chained handler as the fast path's header filter.
type fastFilter chained

func (f *fastFilter) FilterHeader(w *fastpath.ResponseWriter) {
	(*chained)(f).editHeader(fastRequest{w}, w.Status(), w)
}

// httpRequest is the Request view of a net/http request (one pointer:
// passing it as an interface does not allocate).
type httpRequest struct{ r *http.Request }

func (q httpRequest) Method() string { return q.r.Method }
func (q httpRequest) Path() string   { return q.r.URL.Path }

// fastRequest is the Request view of the fast path's request. The
// request is read from the writer: a wrapping handler (strip_prefix) may
// have passed its handler a changed copy, but layers see the request the
// client sent, as on net/http.
type fastRequest struct{ w *fastpath.ResponseWriter }

func (q fastRequest) Method() string { return q.w.Request().Method }
func (q fastRequest) Path() string   { return q.w.Request().Path }

// httpHeader is the HeaderEditor of a net/http header map.
type httpHeader http.Header

func (h httpHeader) AddHeader(name, value string) {
	h[name] = append(h[name], value)
}

func (h httpHeader) ReplaceHeader(name, value string) {
	h[name] = []string{value}
}

func (h httpHeader) DelHeader(name string) { delete(h, name) }
