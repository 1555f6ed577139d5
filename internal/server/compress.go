package server

import (
	"fmt"
	"net/http"

	"portico/internal/compress"
	"portico/internal/config"
)

// compressSettings builds a route's compression, nil when it has none.
func compressSettings(rc *config.Route) (*compress.Settings, error) {
	if rc.Compression == nil {
		return nil, nil
	}
	s, err := compress.NewSettings(*rc.Compression)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return s, nil
}

// withCompression puts h (a proxy, wsgi or cgi handler) behind on-the-fly
// compression when the route has it. For a cached route it goes below
// the cache, so the cache stores the encoded variants. Static routes
// compress inside the static handler instead (each file once, on both
// engines).
func withCompression(s *compress.Settings, h http.Handler) http.Handler {
	if s == nil || h == nil {
		return h
	}
	return compress.New(s, h)
}
