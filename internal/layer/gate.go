package layer

import (
	"net/http"
	"net/netip"
	"strconv"
	"unsafe"

	"portico/internal/clientip"
	"portico/internal/fastpath"
)

// A Gate is a Layer that may answer a request itself before the route's
// handler runs: access control (allow/deny lists, basic auth) and rate
// limits. It reads only a small view of the request (GateRequest), which
// both engines provide without allocating, and answers with a short
// response (Answer), which both engines render; so a gated route stays
// on the fast path whenever its handler does.
type Gate interface {
	Layer
	// Check returns nil to let r through, or the response to send
	// instead (the handler then does not run). It is called once per
	// request on the engine that serves it; the strings of r are valid
	// only during the call.
	Check(r GateRequest) *Answer
}

// GateRequest is what a gate reads of a request, on either engine.
type GateRequest interface {
	Request
	// Header returns the first value of the field name (canonical form),
	// "" when the request has none.
	Header(name string) string
	// RemoteAddr is the connection's peer, "ip:port" (after any PROXY
	// protocol header).
	RemoteAddr() string
	// Client is the client address as res decides it
	// (clientip.Resolver.Client: the peer, or X-Forwarded-For through
	// trusted proxies).
	Client(res *clientip.Resolver) netip.Addr
}

// Answer is a gate's own response: a status, a few header fields and a
// short text body (sent as text/plain; charset=utf-8).
type Answer struct {
	Status int
	Header [][2]string // canonical names
	Body   string
}

// Refunder is a Gate whose Check has a cost to give back when a request
// it let through on the fast path is then handed to net/http (where
// Check runs again): a rate limit must count the request once.
type Refunder interface {
	Refund(r GateRequest)
}

// CredentialConsumer is a Gate that consumes the request's Authorization
// field (basic auth): once it let a request through, the handler (an
// upstream, a CGI script) does not see the field.
type CredentialConsumer interface {
	ConsumesAuthorization() bool
}

// NoHeaderEdits gives a Gate the Layer methods of a layer that never
// edits response headers.
type NoHeaderEdits struct{}

// EditHeader does nothing.
func (NoHeaderEdits) EditHeader(Request, int, HeaderEditor) {}

// EditsHeader reports false.
func (NoHeaderEdits) EditsHeader(string) bool { return false }

// gatesOf picks the gates out of layers, in order.
func gatesOf(layers []Layer) (gates []Gate, consumes bool) {
	for _, l := range layers {
		if g, ok := l.(Gate); ok {
			gates = append(gates, g)
			if c, ok := g.(CredentialConsumer); ok && c.ConsumesAuthorization() {
				consumes = true
			}
		}
	}
	return gates, consumes
}

// check runs the gates in order; the first answer wins.
func (h *chained) check(r GateRequest) *Answer {
	for _, g := range h.gates {
		if a := g.Check(r); a != nil {
			return a
		}
	}
	return nil
}

// gateHTTP runs the gates on net/http; it reports whether a gate
// answered (the answer is written to w).
func (h *chained) gateHTTP(w http.ResponseWriter, r *http.Request) bool {
	a := h.check(httpRequest{r})
	if a == nil {
		if h.consumesAuth {
			// The handler must not see the credential. The map entry
			// is dropped in place (no copy of the header): only
			// handlers run after the gates.
			delete(r.Header, "Authorization")
		}
		return false
	}
	hd := w.Header()
	for _, kv := range a.Header {
		hd[kv[0]] = []string{kv[1]}
	}
	hd["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hd["Content-Length"] = []string{strconv.Itoa(len(a.Body))}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(a.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(a.Body))
	}
	return true
}

// gateFast runs the gates on the fast path; it reports whether a gate
// answered (the answer is written to w).
func (h *chained) gateFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	a := h.check(fastRequest{w})
	if a == nil {
		if h.consumesAuth {
			req.Authorization = ""
			w.HideRequestField("Authorization")
		}
		return false
	}
	w.WriteHeader(a.Status)
	for _, kv := range a.Header {
		w.AddHeader(kv[0], kv[1])
	}
	w.AddHeader("Content-Type", "text/plain; charset=utf-8")
	w.AddHeader("Content-Length", strconv.Itoa(len(a.Body))) // a gate's refusal: its allocation does not matter
	w.AddHeader("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(unsafe.Slice(unsafe.StringData(a.Body), len(a.Body)))
	return true
}

// refundFast gives back what the gates took for a request the handler
// then declined: net/http will check it again.
func (h *chained) refundFast(w *fastpath.ResponseWriter) {
	for _, g := range h.gates {
		if r, ok := g.(Refunder); ok {
			r.Refund(fastRequest{w})
		}
	}
}

// The GateRequest views.

func (q httpRequest) Header(name string) string {
	if v := q.r.Header[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (q httpRequest) Client(res *clientip.Resolver) netip.Addr {
	a, _ := res.Client(q.r.RemoteAddr, q.r.Header["X-Forwarded-For"])
	return a
}

func (q fastRequest) Header(name string) string { return q.w.RequestValue(name) }

func (q fastRequest) Client(res *clientip.Resolver) netip.Addr {
	peer := q.w.Request().RemoteAddr
	if !res.HasTrusted() {
		a, _ := res.Client(peer, nil)
		return a
	}
	var buf [8]string // more X-Forwarded-For fields: the last 8 count
	a, _ := res.Client(peer, q.w.RequestValues("X-Forwarded-For", buf[:0]))
	return a
}
