package server

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"portico/internal/h2"
)

// serveHTTP2 makes srv (a TLS listener's server, TLSConfig set) serve
// HTTP/2 with portico's own engine (package h2), limits from srv:
// MaxHeaderBytes, IdleTimeout, and frames of at most 16 KiB, the
// protocol's default (a HEADERS frame beyond it is the connection error
// FRAME_SIZE_ERROR RFC 9113 section 4.2 asks for; browsers and curl send
// 16 KiB frames anyway); writeTimeout (write_timeout) also bounds a
// response's wait for a client to open its flow-control window.
// srv.Shutdown sends GOAWAY to its connections and waits for their
// streams.
func serveHTTP2(srv *http.Server, writeTimeout time.Duration, logger *slog.Logger) {
	h2.ConfigureServer(srv, &h2.Server{
		MaxHeaderBytes:   srv.MaxHeaderBytes,
		MaxReadFrameSize: 16 << 10,
		IdleTimeout:      srv.IdleTimeout,
		WriteTimeout:     writeTimeout,
		Logger:           logger,
	})
	serve := srv.TLSNextProto["h2"]
	srv.TLSNextProto["h2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		if wb, ok := c.NetConn().(*writeBehindConn); ok {
			wb.writeThrough() // the engine batches its writes itself
		}
		serve(hs, c, h)
	}
}
