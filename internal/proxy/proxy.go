// Package proxy is a reverse proxy and load balancer. (Stub: being written.)
package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

	"portico/internal/config"
)

// Options are the dependencies of a proxy handler.
type Options struct {
	Logger *slog.Logger
	// TrustedProxies: peers whose X-Forwarded-* headers are kept and appended to.
	TrustedProxies []netip.Prefix
}

// Handler proxies one route to its upstreams.
type Handler struct{}

var _ http.Handler = (*Handler)(nil)

// New validates cfg and builds the handler; health checks start here.
func New(cfg config.Proxy, opts Options) (*Handler, error) { return &Handler{}, nil }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

// Close stops health checks and closes idle upstream connections.
func (h *Handler) Close(ctx context.Context) error { return nil }
