package compress

import (
	"bytes"
	"net/http"

	"portico/internal/fastpath"
)

// Normalize sits above a route's cache: it replaces the request's
// Accept-Encoding with the single token Handler (below the cache) will
// choose for it ("zstd", "br", "gzip" or "identity"), so the cache keys
// its variants on the encoding, not on each client's spelling of its
// list: "gzip, deflate, br" and "br;q=1, gzip" share the br variant, and
// each variant is stored and compressed once. The upstream sees the same
// token, which is what it would have to produce anyway.
type Normalize struct {
	s    *Settings
	next http.Handler
	fast fastpath.Handler
}

var (
	_ http.Handler     = (*Normalize)(nil)
	_ fastpath.Handler = (*Normalize)(nil)
)

// NewNormalize returns next (a cache) behind Accept-Encoding normalisation.
func NewNormalize(s *Settings, next http.Handler) *Normalize {
	n := &Normalize{s: s, next: next}
	n.fast, _ = next.(fastpath.Handler)
	return n
}

// token is the Accept-Encoding value a request is served as.
func (n *Normalize) token(ae string, hasRange bool) string {
	if hasRange {
		return "identity"
	}
	return n.s.Negotiate(ae).Token()
}

func (n *Normalize) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, hasRange := r.Header["Range"]
	tok := n.token(headerValue(r.Header["Accept-Encoding"]), hasRange)
	if v := r.Header["Accept-Encoding"]; len(v) != 1 || v[0] != tok {
		r.Header["Accept-Encoding"] = []string{tok}
	}
	n.next.ServeHTTP(w, r)
}

// headerFastHandler is a fast path that takes the request's header lines
// from its caller (cache.Handler.ServeFastHeader).
type headerFastHandler interface {
	ServeFastHeader(req *fastpath.Request, w *fastpath.ResponseWriter, raw []byte) bool
}

// ServeFast passes a request on to the cache's fast path with its
// Accept-Encoding normalised as ServeHTTP does it: in the request's field
// and in the header lines the cache keys its variants on.
func (n *Normalize) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if n.fast == nil {
		return false
	}
	tok := n.token(req.AcceptEncoding, req.Range != "")
	if req.AcceptEncoding == tok {
		return n.fast.ServeFast(req, w)
	}
	hf, ok := n.next.(headerFastHandler)
	raw := w.RawHeader()
	if !ok || raw == nil {
		return false
	}
	var buf [4096]byte // the fast path's request buffer: the lines fit
	r2 := *req
	r2.AcceptEncoding = tok
	return hf.ServeFastHeader(&r2, w, replaceField(buf[:0], raw, "Accept-Encoding", tok))
}

// replaceField appends raw header lines ("Name: value\r\n"...) to b with
// every field called name dropped and one "name: value" line added.
func replaceField(b, raw []byte, name, value string) []byte {
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n') + 1
		if end == 0 {
			end = len(raw)
		}
		line := raw[:end]
		raw = raw[end:]
		if len(line) > len(name) && line[len(name)] == ':' && fastpath.EqualFold(line[:len(name)], name) {
			continue
		}
		b = append(b, line...)
	}
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}
