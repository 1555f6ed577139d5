package cache

import "net/http"

// Unwrap returns the handler the cache fronts (the status page walks a
// route's handlers through it).
func (h *Handler) Unwrap() http.Handler { return h.next }
