// Package static serves files from a folder. (Stub: being written.)
package static

import (
	"log/slog"
	"net/http"

	"portico/internal/config"
)

// Options are the dependencies of a static handler.
type Options struct {
	Logger *slog.Logger
	// Prefix is the route prefix without its trailing slash ("" for "/").
	// The URL path Prefix+"/a/b" maps to Root/a/b (nginx "alias" semantics).
	Prefix string
	// Fallback, if set, serves requests for which no file exists
	// (quick mode --proxy: files first, then the app).
	Fallback http.Handler
}

// Handler serves one static route.
type Handler struct{}

var _ http.Handler = (*Handler)(nil)

// New validates cfg and builds the handler.
func New(cfg config.Static, opts Options) (*Handler, error) { return &Handler{}, nil }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

// Close releases cached open files.
func (h *Handler) Close() error { return nil }
