package static

import "net/http"

// Fallback returns the handler that serves what has no file (files-first
// routes of quick mode's --proxy), or nil.
func (h *Handler) Fallback() http.Handler { return h.fallback }
