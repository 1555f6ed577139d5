package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// startLoopbackDNS answers every A query with 127.0.0.1 (and AAAA with no
// address), so the ACME CA's validation of any name reaches portico on
// loopback. It stops when the test ends.
func startLoopbackDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
			b.EnableCompression()
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5},
					dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// pebble is a running pebble ACME test CA.
type pebble struct {
	Dir    string // ACME directory URL
	Mgmt   string // management API base URL (roots, intermediates and their keys)
	CAFile string // PEM of pebble's own HTTPS certificate (for ca_root)
	Roots  *x509.CertPool
	log    *syncBuffer
	cmd    *exec.Cmd
}

// Orders counts the new orders pebble has seen.
func (p *pebble) Orders() int { return strings.Count(p.log.String(), "Added order") }

// FailedOrders counts the orders pebble set invalid (a failed validation;
// the client then places a new one).
func (p *pebble) FailedOrders() int {
	return strings.Count(p.log.String(), "set INVALID by invalid authz")
}

// Issued counts the certificates pebble issued.
func (p *pebble) Issued() int { return strings.Count(p.log.String(), "Issued certificate serial") }

// startPebble runs Debian's pebble on loopback. Validation requests go to
// httpPort / tlsPort on 127.0.0.1 (names resolve through dns).
func startPebble(t *testing.T, dir string, httpPort, tlsPort int, dns string) *pebble {
	t.Helper()
	return startPebbleOCSP(t, dir, httpPort, tlsPort, dns, "")
}

// startPebbleOCSP is startPebble with ocspURL named as the OCSP responder
// in every certificate pebble issues.
func startPebbleOCSP(t *testing.T, dir string, httpPort, tlsPort int, dns, ocspURL string) *pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		if testing.Short() {
			t.Skip("pebble not installed (-short)")
		}
		t.Fatal("pebble not installed: .ci/run installs it (apt-get install pebble)")
	}
	cert, key := selfSigned(t, "localhost")
	writeFiles(t, dir, map[string]string{"pebble/cert.pem": cert, "pebble/key.pem": key})
	acmePort, mgmtPort := freePort(t), freePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", acmePort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    filepath.Join(dir, "pebble/cert.pem"),
		"privateKey":                     filepath.Join(dir, "pebble/key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               ocspURL,
		"externalAccountBindingRequired": false,
	}}
	data, _ := json.Marshal(conf)
	writeFiles(t, dir, map[string]string{"pebble/config.json": string(data)})
	p := &pebble{Dir: fmt.Sprintf("https://localhost:%d/dir", acmePort), Mgmt: fmt.Sprintf("https://127.0.0.1:%d", mgmtPort),
		CAFile: filepath.Join(dir, "pebble/cert.pem"), log: &syncBuffer{}}
	p.cmd = exec.Command(bin, "-config", filepath.Join(dir, "pebble/config.json"), "-dnsserver", dns)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var root []byte
	waitFor(t, 20*time.Second, func() bool {
		resp, err := insecure.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		root, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	})
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(root) {
		t.Fatalf("pebble root: %q", root)
	}
	return p
}

// servedCert returns the certificate a TLS handshake for name on addr
// gets, verified against roots, or an error.
func servedCert(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}
