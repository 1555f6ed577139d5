package cache

import "portico/internal/fastpath"

// ServeFastHeader is ServeFast with the request's header lines given
// (the form of fastpath.ResponseWriter.RawHeader): a handler in front of
// the cache that normalises a field the cache keys on passes the lines as
// they must be keyed. compress.Normalize does, for Accept-Encoding, so
// that every spelling of a browser's list finds its encoding's variant on
// the fast path.
func (h *Handler) ServeFastHeader(req *fastpath.Request, w *fastpath.ResponseWriter, raw []byte) bool {
	return h.serveFast(req, w, raw)
}
