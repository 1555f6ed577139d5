package cache

import (
	"net/http"
	"sync"
	"time"

	"portico/internal/accessinfo"
)

// flight is one upstream fetch that requests for the same key wait on.
type flight struct {
	done  chan struct{}
	once  sync.Once
	entry *entry // the stored result, set before done closes; nil: go upstream
}

// join returns the flight for key, and whether the caller leads it.
func (h *Handler) join(key string) (*flight, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.flights[key]; f != nil {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	h.flights[key] = f
	return f, true
}

// release ends a flight (once): waiters get e, or go upstream when nil.
func (h *Handler) release(key string, f *flight, e *entry) {
	f.once.Do(func() {
		h.mu.Lock()
		if h.flights[key] == f {
			delete(h.flights, key)
		}
		h.mu.Unlock()
		f.entry = e
		close(f.done)
	})
}

// fetch forwards a request, collapsed with other requests for its key.
func (h *Handler) fetch(w http.ResponseWriter, r *http.Request, st fetchState) {
	f, leader := h.join(st.key)
	if leader {
		h.forward(w, r, st, f)
		return
	}
	t := time.NewTimer(h.lockTimeout)
	select {
	case <-f.done:
		t.Stop()
	case <-t.C:
		h.forward(w, r, st, nil)
		return
	case <-r.Context().Done():
		t.Stop()
		return
	}
	if e := f.entry; e != nil && (len(e.VaryNames) == 0 || secondaryKey(r.Header, e.VaryNames) == e.VaryKey) {
		h.stats.hits.Add(1)
		accessinfo.CacheStatus(w, logHit)
		h.serveEntry(w, r, e, []string{cacheStatus{fwd: st.fwd, collapsed: true}.String()}, h.now())
		return
	}
	// The leader's response was not shareable: go upstream ourselves
	// (nginx proxy_cache_lock semantics).
	h.forward(w, r, st, nil)
}
