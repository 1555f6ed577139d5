// Package h2 is portico's HTTP/2 server (RFC 9113) for TLS connections
// that negotiated "h2". It replaces Go's own HTTP/2 server, whose
// design (a goroutine per stream that grows its stack, another per
// flush, channels between them and the connection's loop) cost twice
// nginx's CPU per request; see bench/README.md.
//
// The design is nginx's, with Go's handlers:
//
//   - One goroutine per connection reads and processes frames. It parses
//     them with golang.org/x/net/http2's Framer and HPACK decoder, which
//     check most of the wire rules (frame sizes, padding, CONTINUATION
//     order, header field names and values); this package keeps the
//     stream states, flow control and the HTTP rules of section 8.
//   - Each request runs its http.Handler on a pooled worker goroutine,
//     so the stacks handlers grow are reused, not grown per request.
//   - Frames from every stream are appended to one buffer under the
//     connection's lock, and written by one flush for all the responses
//     that finished meanwhile: a connection with ten requests in flight
//     makes one TLS record and one write, not ten.
//
// What Go's server got wrong and portico's guard (h2guard, now gone)
// used to patch is done here directly: a connection-specific header
// field or a body that does not add up to its content-length ends the
// connection with PROTOCOL_ERROR; a SETTINGS frame may repeat a setting;
// a stream answered before its body came is still checked for its
// flow-control window and content-length.
package h2

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for a zero Server.
const (
	defaultMaxStreams   = 250
	defaultMaxHeader    = http.DefaultMaxHeaderBytes
	defaultMaxFrameSize = 16 << 10

	// Receive windows: what one stream, and all of a connection's
	// streams together, may have buffered and unread by their handlers.
	streamWindow = 256 << 10
	connWindow   = 1 << 20

	// maxPendingOut bounds the frames waiting to be written on a
	// connection: a handler that writes beyond it flushes itself (and
	// waits for the socket); control frames beyond 16 times it (a
	// client that sends PINGs and reads nothing) end the connection.
	maxPendingOut = 64 << 10

	// maxKeptOut is the largest write buffer a connection keeps between
	// flushes; a larger one, grown by a burst, is let go.
	maxKeptOut = 4 * maxPendingOut

	// workerIdle is how long a worker goroutine waits for its next
	// request before it exits.
	workerIdle = 10 * time.Second

	// prefaceTimeout bounds the wait for the client's connection
	// preface after the TLS handshake.
	prefaceTimeout = 10 * time.Second

	// lingerAfterGoAway is how long a connection ended with an error
	// keeps reading (and discarding) after its GOAWAY, so the close does
	// not become a TCP reset that destroys the GOAWAY before the client
	// reads it.
	lingerAfterGoAway = time.Second

	// discardBeforeReset is how much body an answered stream takes (and
	// drops) before it is reset: a client that sent a little before it
	// heard the answer keeps its stream, one uploading more is stopped.
	discardBeforeReset = 64 << 10

	// maxAnswered bounds the streams kept after their response while the
	// client may still send a body; beyond it the oldest is reset.
	maxAnswered = 64
)

// Server serves HTTP/2 connections. Its zero value is usable; set the
// limits before the first ServeConn.
type Server struct {
	// MaxConcurrentStreams is announced in SETTINGS (0: 250). A client
	// that opens more gets REFUSED_STREAM; one whose reset streams leave
	// more than four times as many handlers running is told
	// ENHANCE_YOUR_CALM (the rapid-reset attack, CVE-2023-44487).
	MaxConcurrentStreams uint32
	// MaxHeaderBytes bounds a request's header list (0: 1 MiB); a
	// longer one is answered 431.
	MaxHeaderBytes int
	// MaxReadFrameSize is the largest frame accepted (16 KiB, the
	// protocol's default, which is not then announced, when 0 or outside
	// the range RFC 9113 allows).
	MaxReadFrameSize uint32
	// WriteTimeout bounds how long a response waits for the client to
	// open its flow-control window (it reads nothing): the stream is then
	// reset (CANCEL). 0 means no bound. Writes to the socket have their
	// own timeout beneath (portico's progressConn).
	WriteTimeout time.Duration
	// IdleTimeout closes a connection with no request in flight for
	// this long (GOAWAY NO_ERROR); 0 means never.
	IdleTimeout time.Duration
	// Logger receives handler panics.
	Logger *slog.Logger

	workers workerPool
	date    atomic.Pointer[dateText]
	// readBuffers counts the read buffers connections hold now; an idle
	// TLS connection holds none (idleread.go).
	readBuffers atomic.Int64

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutting bool
}

// ConfigureServer makes hs serve "h2" connections with s: it takes the
// TLSNextProto entry, adds "h2" to hs.TLSConfig's protocols, and makes
// hs.Shutdown send GOAWAY to s's connections (hs then waits for them, as
// net/http counts a connection handed to TLSNextProto as active until
// the call returns).
func ConfigureServer(hs *http.Server, s *Server) {
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	hs.TLSNextProto["h2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		// net/http's per-connection context (ServerContextKey,
		// LocalAddrContextKey) comes through this method of h.
		ctx := context.Background()
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		handler := hs.Handler
		if handler == nil {
			handler = http.DefaultServeMux
		}
		s.ServeConn(c, handler, ctx)
	}
	if hs.TLSConfig == nil {
		hs.TLSConfig = &tls.Config{}
	}
	if !slices.Contains(hs.TLSConfig.NextProtos, "h2") {
		hs.TLSConfig.NextProtos = append([]string{"h2"}, hs.TLSConfig.NextProtos...)
	}
	hs.RegisterOnShutdown(s.Shutdown)
}

// ServeConn serves one connection until it ends; c has negotiated "h2"
// (or, for tests, speaks HTTP/2 with prior knowledge). Requests see
// ctx's values, and c's TLS state when c is a *tls.Conn.
func (s *Server) ServeConn(nc net.Conn, h http.Handler, ctx context.Context) {
	c := newConn(s, nc, h, ctx)
	if !s.track(c) {
		nc.Close()
		return
	}
	defer s.untrack(c)
	c.serve()
}

// Shutdown tells every connection to go away (GOAWAY NO_ERROR): each
// finishes the requests it has and then closes. New connections are
// closed at once. It does not wait.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.shutting = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		// Each on its own: a connection whose client reads nothing
		// holds its flush, and must not hold the others' GOAWAY.
		go c.goAwayGracefully()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return false
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return defaultMaxStreams
	}
	return s.MaxConcurrentStreams
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes <= 0 {
		return defaultMaxHeader
	}
	return uint32(s.MaxHeaderBytes)
}

func (s *Server) maxFrameSize() uint32 {
	if s.MaxReadFrameSize < defaultMaxFrameSize || s.MaxReadFrameSize > 1<<24-1 {
		return defaultMaxFrameSize // outside what SETTINGS_MAX_FRAME_SIZE allows
	}
	return s.MaxReadFrameSize
}

// workerPool runs handlers on goroutines that outlive one request, so a
// handler's stack, once grown, serves the next request without growing
// again (in Go's server, stack growth was 12% of an HTTP/2 request).
type workerPool struct {
	jobs chan *stream
	once sync.Once
}

func (p *workerPool) run(st *stream) {
	p.once.Do(func() { p.jobs = make(chan *stream) })
	select {
	case p.jobs <- st:
	default:
		go p.work(st)
	}
}

func (p *workerPool) work(st *stream) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		st.run()
		st = nil
		idle.Reset(workerIdle)
		select {
		case st = <-p.jobs:
		case <-idle.C:
			return
		}
	}
}
