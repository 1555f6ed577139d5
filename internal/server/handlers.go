package server

import (
	"context"
	"net/http"

	"portico/internal/cache"
	"portico/internal/cgi"
	"portico/internal/proxy"
	"portico/internal/static"
	"portico/internal/wsgi"
)

// routeHandler is what every handler kind a route can have is: an
// http.Handler that Tree.Close releases with one signature. The
// assertions below keep the kinds to it at compile time.
type routeHandler interface {
	http.Handler
	Close(ctx context.Context) error
}

var (
	_ routeHandler = (*static.Handler)(nil)
	_ routeHandler = (*cgi.Handler)(nil)
	_ routeHandler = (*proxy.Handler)(nil)
	_ routeHandler = (*cache.Handler)(nil)
	_ routeHandler = (*wsgi.Pool)(nil)
	_ routeHandler = (*redirectHandler)(nil)
)

// Close releases nothing: a redirect holds no resources. It is here so
// that every handler kind has the one Close signature.
func (h *redirectHandler) Close(context.Context) error { return nil }
