package server

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"portico/internal/config"
	"portico/internal/tlsauto"
)

// acmeChallengePrefix is where the CA's HTTP-01 requests arrive. On a
// plain-HTTP listener they are answered before routing, so no route (a
// redirect_http site, a catch-all proxy) can shadow them.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

var errNoCertificate = errors.New("no certificate for this listener")

// tlsConfig is the TLS setup of every TLS listener: TLS 1.2 and 1.3 only,
// AEAD cipher suites with forward secrecy only (TLS 1.3's are fixed and
// all modern), Go's default curves (hybrid post-quantum X25519MLKEM768
// first), and certificates chosen the way Host routing chooses sites.
func (s *Server) tlsConfig(key string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   modernCipherSuites(),
		NextProtos:     []string{"h2", "http/1.1", tlsauto.ALPNProto},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certificateFor(key, hello) },
	}
}

// certificateFor picks the certificate of a handshake on listener key:
// the CA's TLS-ALPN-01 validation gets the challenge certificate; a name
// routed to a tls = "auto" site gets its ACME certificate; otherwise the
// site's own files (vhost.certificate).
func (s *Server) certificateFor(key string, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	acme := s.acme.Load()
	if acme != nil && tlsauto.ALPNChallenge(hello) {
		return acme.GetCertificate(hello)
	}
	v := s.tree.Load().byListener[key]
	if v == nil {
		return nil, errNoCertificate
	}
	if st := v.lookup(hello.ServerName); st != nil && st.autoTLS {
		if acme == nil {
			return nil, errNoCertificate
		}
		return acme.GetCertificate(hello)
	}
	if cert := v.certificate(hello.ServerName); cert != nil {
		return cert, nil
	}
	if acme != nil {
		return acme.GetCertificate(hello)
	}
	return nil, errNoCertificate
}

// acmeChallenge answers the CA's HTTP-01 request on a plain listener and
// reports whether r was one.
func (s *Server) acmeChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, acmeChallengePrefix) {
		return false
	}
	acme := s.acme.Load()
	return acme != nil && acme.ServeHTTPChallenge(w, r)
}

// setupACME makes (or keeps) the ACME manager for cfg and hands it the
// names of the auto sites. It runs after the listeners are open, so the
// solvers know which ports the CA will call (portico's own). With no auto
// site left, the manager is closed.
func (s *Server) setupACME(cfg *config.Config) error {
	var names []string
	tlsPort := 0
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		if sc.TLS == nil || !sc.TLS.Auto {
			continue
		}
		names = append(names, sc.Hosts...)
		if tlsPort == 0 {
			tlsPort = s.boundPort(config.ListenerKey(sc.Listen[0]))
		}
	}
	old := s.acme.Load()
	if len(names) == 0 || cfg.Server.ACME == nil {
		if old != nil {
			s.acme.Store(nil)
			old.Close()
		}
		return nil
	}
	m := old
	if m == nil || m.Settings() != *cfg.Server.ACME {
		var err error
		m, err = tlsauto.New(*cfg.Server.ACME, tlsauto.Options{
			Logger:   s.opts.Logger,
			HTTPPort: s.plainPort(cfg),
			TLSPort:  tlsPort,
			// Test knobs (a CA like pebble issues long-lived certificates;
			// a renewal test needs one renewed now): not in the config file.
			RenewalWindowRatio: envFloat("PORTICO_ACME_RENEWAL_RATIO"),
			RenewCheckInterval: envDuration("PORTICO_ACME_RENEW_CHECK"),
		})
		if err != nil {
			return err
		}
		s.acme.Store(m)
		if old != nil {
			old.Close()
		}
	}
	return m.Manage(names)
}

// plainPort is the bound port of the first plain-HTTP listener, where
// HTTP-01 validations are expected (80 when there is none: the solver
// then listens there itself, if it can).
func (s *Server) plainPort(cfg *config.Config) int {
	for i := range cfg.Sites {
		if cfg.Sites[i].TLS != nil {
			continue
		}
		for _, l := range cfg.Sites[i].Listen {
			if p := s.boundPort(config.ListenerKey(l)); p > 0 {
				return p
			}
		}
	}
	return 80
}

// boundPort is the port listener key is bound to (0 if not open).
func (s *Server) boundPort(key string) int {
	l := s.listeners[key]
	if l == nil || l.ln == nil {
		return 0
	}
	if a, ok := l.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func envFloat(name string) float64 {
	f, _ := strconv.ParseFloat(os.Getenv(name), 64)
	return f
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

// modernCipherSuites are the TLS 1.2 suites a site offers: ECDHE (forward
// secrecy) with an AEAD cipher only. Go's defaults also offer the CBC-SHA1
// suites, which audits such as testssl.sh flag as obsolete. TLS 1.3 suites
// are not configurable in Go and are all AEAD.
func modernCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
