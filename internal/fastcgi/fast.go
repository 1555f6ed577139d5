package fastcgi

import (
	"strings"

	"portico/internal/fastpath"
)

var _ fastpath.Handler = (*Handler)(nil)

// ServeFast serves the static files of the route on the fast path (the
// asset requests of a PHP site: /css/app.css, /img/logo.png), through the
// static handler's own fast path. Everything else is declined for
// ServeHTTP: scripts always run there. Only a path whose last segment has
// a dot is looked up, so pretty URLs (/posts/42), the bulk of a front
// controller's requests, cost no extra stat.
func (h *Handler) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	// Hits only: a miss is the front controller's, on net/http's path.
	fh, ok := h.files.(interface {
		ServeFastHit(*fastpath.Request, *fastpath.ResponseWriter) bool
	})
	if !ok || h.isClosed.Load() {
		return false
	}
	last := req.Path[strings.LastIndexByte(req.Path, '/')+1:]
	if strings.IndexByte(last, '.') < 0 || hasFoldedSuffix(last, h.split) {
		return false
	}
	if h.resolve(req.Path).kind != serveFile {
		return false
	}
	return fh.ServeFastHit(req, w)
}
