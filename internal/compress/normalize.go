package compress

import (
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

// ServeFast passes a request on to the cache's fast path when its
// Accept-Encoding is already the normalised token (the cache's fast path
// keys on the raw header line); any other request goes to net/http,
// where ServeHTTP normalises it.
func (n *Normalize) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if n.fast == nil || req.AcceptEncoding != n.token(req.AcceptEncoding, req.Range != "") {
		return false
	}
	return n.fast.ServeFast(req, w)
}
