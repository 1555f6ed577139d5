package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeTLS: `portico serve --tls` serves HTTPS with a certificate from
// a local development CA it makes once (and reuses on the next start), and
// says where the CA is and how to trust it. A client that trusts that CA
// verifies the certificate for localhost and 127.0.0.1.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	state := t.TempDir()
	t.Setenv("XDG_DATA_HOME", state)
	writeFiles(t, dir, map[string]string{"index.html": "dev https"})
	var firstCA []byte
	for round := 0; round < 2; round++ {
		p := startPortico(t, dir, 1, "serve", "--tls", "-b", "127.0.0.1", "0")
		out := p.Stdout.String()
		caPath := filepath.Join(state, "portico", "dev-ca", "ca.pem")
		if !strings.Contains(out, caPath) || !strings.Contains(out, "update-ca-certificates") {
			t.Errorf("round %d: stdout does not say where the CA is and how to trust it:\n%s", round, out)
		}
		if !strings.HasPrefix(p.URLs[0], "https://") {
			t.Fatalf("serving %s, want https", p.URLs[0])
		}
		ca, err := os.ReadFile(caPath)
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			firstCA = ca
		} else if string(ca) != string(firstCA) {
			t.Errorf("the second start made a new CA; want the first one reused")
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca)
		for _, host := range []string{"localhost", "127.0.0.1"} {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
				TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host}}}
			resp, err := c.Get(p.URL("/"))
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, host, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "dev https" || resp.ProtoMajor != 2 {
				t.Errorf("round %d, %s: %s %q", round, host, resp.Proto, b)
			}
		}
		p.Stop()
	}
}
