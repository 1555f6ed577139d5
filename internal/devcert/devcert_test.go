package devcert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestMakeReusesTheCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev-ca")
	f1, err := Make(dir, []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := Make(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !f1.NewCA || f2.NewCA {
		t.Errorf("NewCA: first %v, second %v; want the CA made once", f1.NewCA, f2.NewCA)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "ca-key.pem")); fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	pair, err := tls.LoadX509KeyPair(f2.Cert, f2.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(f1.CA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, name := range []string{"localhost", "127.0.0.1"} {
		opts := x509.VerifyOptions{Roots: roots, DNSName: name}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("leaf for %s does not verify against the first CA: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com"}); err == nil {
		t.Errorf("leaf verifies for a name it was not made for")
	}
}
