package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"portico/internal/config"
)

// HTTP/3 (QUIC) runs beside each TLS listener whose sites allow it
// (http3, default on), on the UDP port of the same number, with the same
// certificates and the same handler tree. TCP answers advertise it with
// Alt-Svc, so browsers switch after their first request.

// wantsHTTP3 reports whether a TLS listener serves HTTP/3: when any of its
// sites leaves http3 on. (A listener keeps what it started with until it
// is reopened: a reload that only flips http3 takes effect on restart.)
func wantsHTTP3(cfg *config.Config, key string) bool {
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		if sc.TLS == nil || (sc.HTTP3 != nil && !*sc.HTTP3) {
			continue
		}
		for _, a := range sc.Listen {
			if config.ListenerKey(a) == key {
				return true
			}
		}
	}
	return false
}

// startHTTP3 serves HTTP/3 on the UDP side of TLS listener l and returns
// the handler for its TCP side, which advertises it. When the UDP port
// cannot be had, TCP serves alone and the log says why.
func (s *Server) startHTTP3(l *listener, tlsCfg *tls.Config, h http.Handler, srvCfg config.Server) http.Handler {
	addr := l.ln.Addr().(*net.TCPAddr)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: addr.IP, Port: addr.Port, Zone: addr.Zone})
	if err != nil {
		s.opts.Logger.Warn("http3: cannot listen on UDP; HTTP/1.1 and HTTP/2 only", "addr", addr.String(), "err", err)
		return h
	}
	l.udp = udp
	l.h3 = &http3.Server{
		Handler:        h,
		TLSConfig:      http3.ConfigureTLSConfig(tlsCfg.Clone()),
		MaxHeaderBytes: int(srvCfg.MaxHeaderBytes),
		IdleTimeout:    srvCfg.IdleTimeout.D(),
		Logger:         s.opts.Logger,
	}
	s.wg.Add(1)
	go func(h3 *http3.Server) {
		defer s.wg.Done()
		if err := h3.Serve(udp); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
			s.opts.Logger.Error("http3 listener stopped", "addr", l.addr, "err", err)
		}
	}(l.h3)
	return altSvc{next: h, value: fmt.Sprintf(`h3=":%d"; ma=86400`, addr.Port)}
}

// stopHTTP3 lets HTTP/3 requests in flight finish (until ctx ends), then
// closes the UDP side.
func (l *listener) stopHTTP3(ctx context.Context) {
	if l.h3 == nil {
		return
	}
	l.h3.Shutdown(ctx)
	l.h3.Close()
	l.udp.Close()
}

// altSvc advertises HTTP/3 on the TCP side of a TLS listener.
type altSvc struct {
	next  http.Handler
	value string
}

func (a altSvc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Alt-Svc", a.value)
	a.next.ServeHTTP(w, r)
}
