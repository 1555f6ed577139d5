package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"golang.org/x/net/http2"

	"portico/internal/h2guard"
)

// serveHTTP2Guarded makes srv (a TLS listener's server, TLSConfig and
// HTTP2 set) serve HTTP/2 through h2guard: the client's frames pass the
// guard, which enforces what Go's HTTP/2 server does not (RFC 9113
// connection-specific fields and content-length end the connection,
// repeated settings are accepted), then reach the same server code
// net/http bundles, from golang.org/x/net/http2.
//
// ConfigureServer registers that server with srv, so srv.Shutdown still
// sends GOAWAY to its connections and waits for their streams, and its
// limits come from srv (srv.HTTP2, IdleTimeout, MaxHeaderBytes). Only the
// "h2" entry it puts in TLSNextProto is replaced, by the same call on the
// guarded connection.
func serveHTTP2Guarded(srv *http.Server) error {
	h2 := &http2.Server{}
	if err := http2.ConfigureServer(srv, h2); err != nil {
		return fmt.Errorf("http2: %w", err)
	}
	srv.TLSNextProto[http2.NextProtoTLS] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		// net/http hands its per-connection context (ServerContextKey,
		// LocalAddrContextKey) over through this method of h.
		var ctx context.Context
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		h2.ServeConn(h2guard.New(c), &http2.ServeConnOpts{Context: ctx, Handler: h, BaseConfig: hs})
	}
	return nil
}
