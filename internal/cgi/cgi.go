// Package cgi runs CGI scripts (RFC 3875). (Stub: being written.)
package cgi

import (
	"context"
	"log/slog"
	"net/http"

	"portico/internal/config"
)

// Options are the dependencies of a CGI handler.
type Options struct {
	Logger *slog.Logger
	// Prefix is the route prefix without its trailing slash: the URL path
	// Prefix+"/x.py/more" runs Root/x.py with PATH_INFO "/more".
	Prefix string
	// Redispatch serves a CGI local redirect (a "Location: /path" response)
	// as a new GET through the site's full routing.
	Redispatch func(w http.ResponseWriter, r *http.Request)
}

// Handler runs the scripts of one cgi route.
type Handler struct{}

var _ http.Handler = (*Handler)(nil)

// New validates cfg and builds the handler.
func New(cfg config.CGI, opts Options) (*Handler, error) { return &Handler{}, nil }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

// Close kills every running script and waits for them to be reaped.
func (h *Handler) Close(ctx context.Context) error { return nil }
