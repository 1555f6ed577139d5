// Package cache is an RFC 9111 shared HTTP cache. (Stub: being written.)
package cache

import (
	"context"
	"log/slog"
	"net/http"

	"portico/internal/config"
)

// Options are the dependencies of a cache handler.
type Options struct {
	Logger *slog.Logger
	// Name identifies the cache (site and route) in logs and metrics.
	Name string
}

// Handler answers from the cache or forwards to next.
type Handler struct{ next http.Handler }

var _ http.Handler = (*Handler)(nil)

// New validates cfg and builds a cache in front of next.
func New(cfg config.Cache, next http.Handler, opts Options) (*Handler, error) {
	return &Handler{next: next}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.next.ServeHTTP(w, r) }

// Purge removes the entry for an absolute URL, or every entry whose URL
// starts with it when prefix is true. It returns how many were removed.
func (h *Handler) Purge(ctx context.Context, url string, prefix bool) (int, error) { return 0, nil }

// Close releases the store.
func (h *Handler) Close(ctx context.Context) error { return nil }
