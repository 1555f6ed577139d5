// Package tlsauto gets and renews certificates from an ACME CA (RFC 8555)
// for the sites with tls = "auto", on top of certmagic: portico answers
// the HTTP-01 challenge on its plain-HTTP listeners and TLS-ALPN-01 on its
// TLS listeners itself, renews in the background before expiry, staples
// OCSP where the CA offers it, and keeps accounts, certificates and locks
// in a folder or in Redis (shared by several instances: one order per
// name, whoever holds its lock).
//
// A Manager lives as long as the server, not one config: a reload calls
// Manage with the names of the new config, and certificates already held
// keep being served.
package tlsauto

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"portico/internal/config"
)

// Options are what a Manager needs besides [server.acme].
type Options struct {
	Logger *slog.Logger
	// HTTPPort and TLSPort are where the CA's validation requests arrive
	// (default 80 and 443). The solvers try to listen there; when
	// portico's own listeners hold the port, they answer instead.
	HTTPPort, TLSPort int
	// RenewalWindowRatio is the share of a certificate's lifetime, before
	// its end, in which it is renewed. 0: certmagic's default (1/3).
	RenewalWindowRatio float64
	// RenewCheckInterval is how often certificates are checked for
	// renewal. 0: certmagic's default (10 minutes).
	RenewCheckInterval time.Duration
}

// Manager obtains, renews and serves the certificates of the auto sites.
type Manager struct {
	magic    *certmagic.Config
	issuer   *certmagic.ACMEIssuer
	cache    *certmagic.Cache
	redis    *redisStorage // nil for folder storage
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	managed  []string // names Manage was last called with
	settings config.ACME
}

// New makes a Manager for cfg. It contacts nobody: the first Manage does.
func New(cfg config.ACME, opts Options) (*Manager, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var roots *x509.CertPool
	if cfg.CARoot != "" {
		pem, err := os.ReadFile(cfg.CARoot)
		if err != nil {
			return nil, fmt.Errorf("acme ca_root: %w", err)
		}
		roots, err = x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme ca_root %s: no PEM certificate in it", cfg.CARoot)
		}
	}
	m := &Manager{log: log, settings: cfg}
	var storage certmagic.Storage
	if config.RedisStorage(cfg.Storage) {
		rs, err := newRedisStorage(cfg.Storage)
		if err != nil {
			return nil, err
		}
		m.redis, storage = rs, rs
	} else {
		if err := os.MkdirAll(cfg.Storage, 0o700); err != nil {
			return nil, fmt.Errorf("acme storage: %w", err)
		}
		storage = &certmagic.FileStorage{Path: cfg.Storage}
	}
	zl := zapToSlog(log)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		OCSPCheckInterval:  opts.RenewCheckInterval,
		Logger:             zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage:            storage,
		Logger:             zl,
		RenewalWindowRatio: opts.RenewalWindowRatio,
	})
	m.issuer = certmagic.NewACMEIssuer(m.magic, certmagic.ACMEIssuer{
		CA:             cfg.Directory,
		TestCA:         cfg.Directory, // no fallback to another CA
		Email:          cfg.Email,
		Agreed:         true,
		TrustedRoots:   roots,
		AltHTTPPort:    opts.HTTPPort,
		AltTLSALPNPort: opts.TLSPort,
		Logger:         zl,
	})
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Settings are the [server.acme] values the Manager was made with; a
// reload that changes them needs a new Manager.
func (m *Manager) Settings() config.ACME { return m.settings }

// Manage makes sure certificates for names are obtained (in the
// background, retrying with backoff while the CA is unreachable) and
// renewed. Names already held are served at once.
func (m *Manager) Manage(names []string) error {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	m.mu.Lock()
	same := slices.Equal(names, m.managed)
	m.managed = names
	m.mu.Unlock()
	if same || len(names) == 0 {
		return nil
	}
	m.log.Info("acme: managing certificates", "names", names, "ca", m.settings.Directory)
	if err := m.magic.ManageAsync(m.ctx, names); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	return nil
}

// GetCertificate serves a TLS handshake: a held certificate for its
// name, or the TLS-ALPN-01 challenge certificate while the CA validates.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.magic.GetCertificate(hello)
}

// ALPNChallenge reports whether a handshake is the CA's TLS-ALPN-01
// validation (it must reach GetCertificate whatever the name).
func ALPNChallenge(hello *tls.ClientHelloInfo) bool {
	return slices.Contains(hello.SupportedProtos, acmez.ACMETLS1Protocol)
}

// ALPNProto is the protocol a TLS listener must offer for TLS-ALPN-01.
const ALPNProto = acmez.ACMETLS1Protocol

// ServeHTTPChallenge answers the CA's HTTP-01 request and reports whether
// r was one (/.well-known/acme-challenge/TOKEN of a pending challenge).
func (m *Manager) ServeHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return m.issuer.HandleHTTPChallenge(w, r)
}

// Close stops renewals and releases the storage. Certificates stay in
// storage for the next start.
func (m *Manager) Close() error {
	m.cancel()
	m.cache.Stop()
	if m.redis != nil {
		return m.redis.close()
	}
	return nil
}
