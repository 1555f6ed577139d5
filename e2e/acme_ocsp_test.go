package e2e

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// pebbleOCSP answers OCSP requests about pebble's certificates, signing
// with pebble's intermediate key (fetched from its management API on the
// first request, since pebble makes its keys at start).
type pebbleOCSP struct {
	*httptest.Server
	pb       *pebble
	once     sync.Once
	issuer   *x509.Certificate
	key      crypto.Signer
	loadErr  error
	requests atomic.Int32
}

func newPebbleOCSP(t *testing.T) *pebbleOCSP {
	r := &pebbleOCSP{}
	r.Server = httptest.NewServer(http.HandlerFunc(r.answer))
	t.Cleanup(r.Close)
	return r
}

func (r *pebbleOCSP) load() {
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	fetch := func(path string) *pem.Block {
		resp, err := cl.Get(r.pb.Mgmt + path)
		if err != nil {
			r.loadErr = err
			return nil
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		b, _ := pem.Decode(data)
		if b == nil {
			r.loadErr = fmt.Errorf("%s: no PEM in %q", path, data)
		}
		return b
	}
	cb, kb := fetch("/intermediates/0"), fetch("/intermediate-keys/0")
	if cb == nil || kb == nil {
		return
	}
	if r.issuer, r.loadErr = x509.ParseCertificate(cb.Bytes); r.loadErr != nil {
		return
	}
	var k any
	if k, r.loadErr = x509.ParsePKCS1PrivateKey(kb.Bytes); r.loadErr != nil {
		if k, r.loadErr = x509.ParsePKCS8PrivateKey(kb.Bytes); r.loadErr != nil {
			k, r.loadErr = x509.ParseECPrivateKey(kb.Bytes)
		}
	}
	if r.loadErr == nil {
		r.key = k.(crypto.Signer)
	}
}

func (r *pebbleOCSP) answer(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	r.once.Do(r.load)
	if r.loadErr != nil {
		http.Error(w, r.loadErr.Error(), http.StatusInternalServerError)
		return
	}
	body, _ := io.ReadAll(req.Body)
	oreq, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	der, err := ocsp.CreateResponse(r.issuer, r.issuer, ocsp.Response{
		Status: ocsp.Good, SerialNumber: oreq.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
	}, r.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

// TestACMEOCSPStaple: pebble names an OCSP responder in the certificates
// it issues (one on loopback, answering "good" for its intermediate);
// portico's ACME certificate is then served with the responder's answer
// stapled.
func TestACMEOCSPStaple(t *testing.T) {
	dir := t.TempDir()
	httpPort, tlsPort := freePort(t), freePort(t)
	responder := newPebbleOCSP(t)
	pb := startPebbleOCSP(t, dir, httpPort, tlsPort, startLoopbackDNS(t), responder.URL)
	responder.pb = pb
	writeFiles(t, dir, map[string]string{"public/index.html": "secure home"})
	startConfig(t, dir, acmeConfig(pb, httpPort, tlsPort, "certs"), 2)
	addr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	var state tls.ConnectionState
	waitFor(t, 60*time.Second, func() bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "portico.test", RootCAs: pb.Roots})
		if err != nil {
			return false
		}
		defer c.Close()
		state = c.ConnectionState()
		return len(state.OCSPResponse) > 0
	})
	responder.once.Do(responder.load) // a no-op that orders the reads below after load
	if responder.loadErr != nil {
		t.Fatalf("responder: %v", responder.loadErr)
	}
	leaf := state.PeerCertificates[0]
	if len(leaf.OCSPServer) == 0 || leaf.OCSPServer[0] != responder.URL {
		t.Fatalf("pebble's certificate names responder %v, want %s", leaf.OCSPServer, responder.URL)
	}
	resp, err := ocsp.ParseResponseForCert(state.OCSPResponse, leaf, responder.issuer)
	if err != nil {
		t.Fatalf("staple: %v", err)
	}
	if resp.Status != ocsp.Good {
		t.Errorf("stapled status %d, want good", resp.Status)
	}
	t.Logf("acme: staple from the responder after %d request(s)", responder.requests.Load())
}
