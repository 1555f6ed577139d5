package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// testCA is a certificate authority for tests: it issues leaf
// certificates and signs OCSP answers about them.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portico test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for localhost naming ocspURL as its
// responder (none if empty) into dir as cert.pem (the leaf, then the CA
// when withIssuer) and key.pem.
func (ca *testCA) issue(t *testing.T, dir, ocspURL string, withIssuer bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ocspURL != "" {
		tmpl.OCSPServer = []string{ocspURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if withIssuer {
		chain = append(chain, ca.pem...)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(chain, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ocspResponder is an OCSP responder on loopback answering for ca with
// the status it is set to; answers are valid for validity.
type ocspResponder struct {
	*httptest.Server
	status   atomic.Int32 // ocsp.Good, ocsp.Revoked...
	requests atomic.Int32
}

func newOCSPResponder(t *testing.T, ca *testCA, validity time.Duration) *ocspResponder {
	t.Helper()
	r := &ocspResponder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		body, _ := io.ReadAll(req.Body)
		oreq, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		tmpl := ocsp.Response{
			Status: int(r.status.Load()), SerialNumber: oreq.SerialNumber,
			ThisUpdate: now.Add(-time.Second), NextUpdate: now.Add(validity),
		}
		if tmpl.Status == ocsp.Revoked {
			tmpl.RevokedAt = now.Add(-time.Minute)
		}
		der, err := ocsp.CreateResponse(ca.cert, ca.cert, tmpl, crypto.Signer(ca.key))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	}))
	t.Cleanup(r.Close)
	return r
}

// A site with certificate files whose certificate names a responder
// staples the responder's answer to its handshakes.
func TestOCSPStapledForCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	resp := newOCSPResponder(t, ca, time.Hour)
	leaf := ca.issue(t, dir, resp.URL, true)
	addr, roots := startCertFileSite(t, dir, ca, nil)
	var staple []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(staple) == 0 && time.Now().Before(deadline) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		staple = c.ConnectionState().OCSPResponse
		c.Close()
		if len(staple) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(staple) == 0 {
		t.Fatalf("no OCSP staple after 10s (%d requests at the responder)", resp.requests.Load())
	}
	leafCert, _ := x509.ParseCertificate(leaf.Certificate[0])
	got, err := ocsp.ParseResponseForCert(staple, leafCert, ca.cert)
	if err != nil {
		t.Fatalf("staple: %v", err)
	}
	if got.Status != ocsp.Good {
		t.Errorf("stapled status %d, want good", got.Status)
	}
}

// syncLog collects what a logger writes.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func quickOCSPPolicy() ocspPolicy {
	return ocspPolicy{retryMin: 10 * time.Millisecond, retryMax: 50 * time.Millisecond,
		refreshMin: 10 * time.Millisecond, refreshMax: time.Hour, fetchTimeout: 2 * time.Second}
}

// The stapler's answers, one fetch at a time: good is stapled, revoked
// removes the staple (and says so), a responder that is down keeps the
// staple until it expires.
func TestOCSPStaplerStates(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	// OCSP times are whole seconds: NextUpdate is 1-2s ahead.
	resp := newOCSPResponder(t, ca, 2*time.Second)
	leaf := ca.issue(t, dir, resp.URL, true)
	log := &syncLog{}
	sc := newSiteCert(leaf, "main", slog.New(slog.NewTextHandler(log, nil)), quickOCSPPolicy())
	if sc.stapler == nil {
		t.Fatal("no stapler for a certificate that names a responder")
	}
	ctx := context.Background()
	retry := sc.stapler.policy.retryMin
	fetch := func() time.Duration { return sc.stapler.once(ctx, &retry) }

	resp.status.Store(ocsp.Good)
	if wait := fetch(); wait <= 0 || wait > time.Second {
		t.Errorf("next fetch in %v, want about half of the 2s validity", wait)
	}
	if len(sc.get().OCSPStaple) == 0 {
		t.Fatal("good answer not stapled")
	}

	resp.Close() // the responder is down: the staple stays while valid
	fetch()
	if len(sc.get().OCSPStaple) == 0 {
		t.Error("a valid staple was dropped because the responder is down")
	}
	time.Sleep(time.Until(sc.stapler.nextUpdate) + 50*time.Millisecond)
	fetch()
	if len(sc.get().OCSPStaple) != 0 {
		t.Error("an expired staple is still served")
	}

	resp2 := newOCSPResponder(t, ca, time.Hour)
	sc.stapler.url = resp2.URL
	resp2.status.Store(ocsp.Good)
	fetch()
	if len(sc.get().OCSPStaple) == 0 {
		t.Fatal("good answer not stapled")
	}
	resp2.status.Store(ocsp.Revoked)
	fetch()
	if len(sc.get().OCSPStaple) != 0 {
		t.Error("stapled after the responder said revoked")
	}
	if !bytes.Contains([]byte(log.String()), []byte("revoked")) {
		t.Errorf("log does not say the certificate is revoked:\n%s", log.String())
	}
}

// Nothing to staple: no responder named, or no issuer in the file to
// build the request (logged).
func TestOCSPNotStapled(t *testing.T) {
	ca := newTestCA(t)
	log := &syncLog{}
	logger := slog.New(slog.NewTextHandler(log, nil))
	if sc := newSiteCert(ca.issue(t, t.TempDir(), "", true), "a", logger, quickOCSPPolicy()); sc.stapler != nil {
		t.Error("stapler for a certificate without a responder")
	}
	if sc := newSiteCert(ca.issue(t, t.TempDir(), "http://127.0.0.1:1/", false), "b", logger, quickOCSPPolicy()); sc.stapler != nil {
		t.Error("stapler without an issuer certificate")
	}
	if !bytes.Contains([]byte(log.String()), []byte("no issuer certificate")) {
		t.Errorf("missing issuer not logged:\n%s", log.String())
	}
}

func TestOCSPRefreshIn(t *testing.T) {
	p := ocspPolicy{refreshMin: time.Minute, refreshMax: 24 * time.Hour}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		this, next time.Time
		want       time.Duration
	}{
		{now, now.Add(4 * 24 * time.Hour), 24 * time.Hour},              // half is 2 days: capped
		{now, now.Add(10 * time.Hour), 5 * time.Hour},                   // halfway
		{now.Add(-10 * time.Hour), now.Add(2 * time.Hour), time.Minute}, // past halfway: soon
		{now, time.Time{}, 24 * time.Hour},                              // no NextUpdate
		{now.Add(-time.Hour), now.Add(3 * time.Hour), time.Hour},        // halfway from ThisUpdate
	} {
		if got := ocspRefreshIn(tc.this, tc.next, now, p); got != tc.want {
			t.Errorf("%v..%v: refresh in %v, want %v", tc.this, tc.next, got, tc.want)
		}
	}
}
