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
	// RemoteAddr is the peer's "ip:port"; Host the request's Host;
	// Scheme "http" or "https"; RequestID its X-Request-ID as the server
	// assigned it ("" when off). Placeholders in rule values read them.
	RemoteAddr() string
	Host() string
	Scheme() string
	RequestID() string
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
	// requests are the layers that also edit requests (RequestLayer).
	requests []RequestLayer
	// answerPath is the path next may answer a request for a missing
	// path with (an SPA's index), "" if none: rules that match it apply.
	answerPath string
	// gates are the layers that are Gates (gate.go), which run before
	// next; consumesAuth: one of them keeps Authorization from next.
	gates        []Gate
	consumesAuth bool
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
	for _, l := range layers {
		if rl, ok := l.(RequestLayer); ok {
			h.requests = append(h.requests, rl)
		}
	}
	if ap, ok := next.(AnswerPather); ok {
		h.answerPath = ap.AnswerPath()
	}
	h.gates, h.consumesAuth = gatesOf(layers)
	return h
}

// AnswerPather is a handler that may answer a request with another path's
// content (an SPA's index for a page navigation): header rules matching
// that path apply to such an answer, which the handler announces with
// the writer's SetMatchPath.
type AnswerPather interface {
	AnswerPath() string
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
	// Gates see the request the client sent; request rules edit what the
	// handler gets after they let it through.
	if !h.editsHeader(r.URL.Path) && (h.answerPath == "" || !h.editsHeader(h.answerPath)) {
		if h.gates != nil && h.gateHTTP(w, r) {
			return
		}
		h.next.ServeHTTP(w, h.editRequest(r))
		return
	}
	hw := &headerWriter{w: w, h: h, r: httpRequest{r}}
	if h.gates != nil && h.gateHTTP(hw, r) {
		return
	}
	h.next.ServeHTTP(hw, h.editRequest(r))
}

// ServeFast serves req through the layers on the fast path, or declines
// (returns false) when the handler inside does.
func (h *chained) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if h.fast == nil || h.editsRequest(req.Path) {
		return false // request rules: net/http's path edits the request
	}
	if h.editsHeader(req.Path) {
		w.SetHeaderFilter((*fastFilter)(h))
	}
	if h.gates != nil && h.gateFast(req, w) {
		return true
	}
	if !h.fast.ServeFast(req, w) {
		w.SetHeaderFilter(nil)
		if h.gates != nil {
			h.refundFast(w)
		}
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

func (q httpRequest) Method() string     { return q.r.Method }
func (q httpRequest) Path() string       { return q.r.URL.Path }
func (q httpRequest) RemoteAddr() string { return q.r.RemoteAddr }
func (q httpRequest) Host() string       { return q.r.Host }
func (q httpRequest) RequestID() string  { return q.r.Header.Get("X-Request-Id") }
func (q httpRequest) Scheme() string {
	if q.r.TLS != nil {
		return "https"
	}
	return "http"
}

// fastRequest is the Request view of the fast path's request. The
// request is read from the writer: a wrapping handler (strip_prefix) may
// have passed its handler a changed copy, but layers see the request the
// client sent, as on net/http.
type fastRequest struct{ w *fastpath.ResponseWriter }

func (q fastRequest) Method() string     { return q.w.Request().Method }
func (q fastRequest) Path() string       { return q.w.Request().Path }
func (q fastRequest) RemoteAddr() string { return q.w.Request().RemoteAddr }
func (q fastRequest) Host() string       { return q.w.Request().Host }
func (q fastRequest) RequestID() string  { return q.w.Request().RequestID }
func (q fastRequest) Scheme() string     { return "http" } // the fast path serves no TLS

// httpHeader is the HeaderEditor of a net/http header map.
type httpHeader http.Header

func (h httpHeader) AddHeader(name, value string) {
	h[name] = append(h[name], value)
}

func (h httpHeader) ReplaceHeader(name, value string) {
	h[name] = []string{value}
}

func (h httpHeader) DelHeader(name string) { delete(h, name) }
