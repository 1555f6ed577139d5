package server

import (
	"fmt"
	"net/http"

	"portico/internal/compress"
	"portico/internal/config"
	"portico/internal/fastpath"
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

// withCompressionFastFiles is withCompression for a handler whose fast
// path serves only static files through a static handler that compresses
// them itself (a fastcgi route's assets): net/http's path goes through
// the compressing writer, the fast path stays the handler's own.
func withCompressionFastFiles(s *compress.Settings, h http.Handler) http.Handler {
	fh, ok := h.(fastpath.Handler)
	if s == nil || !ok {
		return withCompression(s, h)
	}
	// Its scripts' answers must go through the compressing writer too:
	// on the fast path it serves only files.
	if fo, ok := h.(interface{ FilesOnly() fastpath.Handler }); ok {
		fh = fo.FilesOnly()
	}
	return fastFiles{Handler: compress.New(s, h), fast: fh}
}

// fastFiles is a compressed handler with its inner fast path.
type fastFiles struct {
	http.Handler
	fast fastpath.Handler
}

func (f fastFiles) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	return f.fast.ServeFast(req, w)
}
