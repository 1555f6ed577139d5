package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// siteCert is a site's certificate from files (tls = { cert, key }). When
// the certificate names an OCSP responder and its file holds the issuer
// after it, a goroutine (from Tree.Start on: `portico check` asks no
// responder) asks the responder for the certificate's status and staples
// the answer to every handshake (clients then need not ask the CA
// themselves), fresh until the tree is closed. ACME certificates get the
// same from certmagic (package tlsauto).
type siteCert struct {
	cur     atomic.Pointer[tls.Certificate]
	stapler *stapler           // nil: nothing to staple
	cancel  context.CancelFunc // stops the stapler once started
}

// ocspPolicy is when the stapler asks again.
type ocspPolicy struct {
	retryMin, retryMax time.Duration // after a failed fetch, doubling
	refreshMin         time.Duration // the soonest a good answer is replaced
	refreshMax         time.Duration // the latest (answers without a NextUpdate)
	fetchTimeout       time.Duration
}

func defaultOCSPPolicy() ocspPolicy {
	return ocspPolicy{
		retryMin: time.Minute, retryMax: time.Hour,
		refreshMin: time.Minute, refreshMax: 24 * time.Hour,
		fetchTimeout: 10 * time.Second,
	}
}

// newSiteCert wraps c and, when it can be stapled, prepares its stapler.
func newSiteCert(c tls.Certificate, site string, logger *slog.Logger, policy ocspPolicy) *siteCert {
	sc := &siteCert{}
	sc.cur.Store(&c)
	leaf, issuer := leafAndIssuer(c)
	if leaf == nil || len(leaf.OCSPServer) == 0 {
		return sc
	}
	if issuer == nil {
		logger.Warn("tls: the certificate names an OCSP responder but its file has no issuer certificate after it; not stapled",
			"site", site, "responder", leaf.OCSPServer[0])
		return sc
	}
	sc.stapler = &stapler{cert: sc, base: c, leaf: leaf, issuer: issuer, url: leaf.OCSPServer[0], site: site, logger: logger, policy: policy}
	return sc
}

// start runs the stapler, if there is one, until Close.
func (c *siteCert) start() error {
	if c.stapler == nil || c.cancel != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.stapler.run(ctx)
	return nil
}

// get is the certificate to present now.
func (c *siteCert) get() *tls.Certificate {
	if c == nil {
		return nil
	}
	return c.cur.Load()
}

// Close stops the stapler.
func (c *siteCert) Close(context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	return nil
}

func leafAndIssuer(c tls.Certificate) (leaf, issuer *x509.Certificate) {
	if len(c.Certificate) == 0 {
		return nil, nil
	}
	leaf = c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, nil
		}
	}
	if len(c.Certificate) > 1 {
		issuer, _ = x509.ParseCertificate(c.Certificate[1])
	}
	return leaf, issuer
}

type stapler struct {
	cert         *siteCert
	base         tls.Certificate // without a staple
	leaf, issuer *x509.Certificate
	url          string
	site         string
	logger       *slog.Logger
	policy       ocspPolicy
	nextUpdate   time.Time // of the staple served; zero without one
}

func (s *stapler) run(ctx context.Context) {
	retry := s.policy.retryMin
	for {
		wait := s.once(ctx, &retry)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// once fetches and staples one answer and says when to ask next.
func (s *stapler) once(ctx context.Context, retry *time.Duration) time.Duration {
	resp, der, err := s.fetch(ctx)
	now := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		wait := *retry
		*retry = min(2**retry, s.policy.retryMax)
		if !s.nextUpdate.IsZero() && !now.Before(s.nextUpdate) {
			s.unstaple() // expired: a client would reject it
		}
		s.logger.Warn("tls: cannot get an OCSP staple; retrying", "site", s.site, "responder", s.url, "err", err, "retry_in", wait)
		return wait
	}
	*retry = s.policy.retryMin
	if resp.Status != ocsp.Good {
		s.unstaple()
		status := "unknown"
		if resp.Status == ocsp.Revoked {
			status = "revoked"
		}
		s.logger.Error("tls: the OCSP responder says the certificate is "+status+"; not stapled: replace the certificate",
			"site", s.site, "responder", s.url)
		return s.policy.refreshMax
	}
	staple := s.base
	staple.OCSPStaple = der
	s.cert.cur.Store(&staple)
	s.nextUpdate = resp.NextUpdate
	return ocspRefreshIn(resp.ThisUpdate, resp.NextUpdate, now, s.policy)
}

func (s *stapler) unstaple() {
	base := s.base
	s.cert.cur.Store(&base)
	s.nextUpdate = time.Time{}
}

// ocspRefreshIn is when to replace an answer valid from this to next:
// halfway through, as certmagic does, within the policy's bounds.
func ocspRefreshIn(this, next, now time.Time, p ocspPolicy) time.Duration {
	if next.IsZero() {
		return p.refreshMax
	}
	d := this.Add(next.Sub(this) / 2).Sub(now)
	return min(max(d, p.refreshMin), p.refreshMax)
}

// fetch asks the responder (RFC 6960 appendix A.1, POST) and checks the
// answer is for this certificate and signed by its issuer.
func (s *stapler) fetch(ctx context.Context) (*ocsp.Response, []byte, error) {
	req, err := ocsp.CreateRequest(s.leaf, s.issuer, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.policy.fetchTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(req))
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp responder url: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, nil, err
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("ocsp responder answered %s", hresp.Status)
	}
	der, err := io.ReadAll(io.LimitReader(hresp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the ocsp response: %w", err)
	}
	resp, err := ocsp.ParseResponseForCert(der, s.leaf, s.issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp response: %w", err)
	}
	return resp, der, nil
}
