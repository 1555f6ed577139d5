// Package devcert makes the certificate of `portico serve --tls`: a local
// certificate authority, created once in a state folder and reused (so a
// developer trusts it once), and a short-lived leaf for localhost, the
// loopback addresses and the machine's name, made fresh on every start.
//
// Threat model: the CA's private key can sign a certificate for any name
// that every client trusting the CA will accept. It is written 0600 in a
// 0700 folder of the user's own, is never sent anywhere, and is used only
// here; the instructions tell the user it is theirs alone to trust.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths of a development certificate.
type Files struct {
	CA, Cert, Key string
	// NewCA is set when the CA was made by this call (it needs trusting).
	NewCA bool
}

// Dir is the default state folder: $XDG_DATA_HOME/portico/dev-ca, or
// ~/.local/share/portico/dev-ca.
func Dir() (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("dev certificate: no home folder: %w", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "portico", "dev-ca"), nil
}

// Make ensures the CA in dir and writes a fresh leaf for names (IP
// addresses become IP SANs) valid for 30 days.
func Make(dir string, names []string) (Files, error) {
	f := Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "localhost.pem"), Key: filepath.Join(dir, "localhost-key.pem")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("dev certificate: %w", err)
	}
	caCert, caKey, made, err := loadOrMakeCA(dir)
	if err != nil {
		return f, err
	}
	f.NewCA = made
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "portico development certificate"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("dev certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return f, err
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return f, err
	}
	// The chain: leaf, then the CA (clients that trust the CA verify it).
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), caPEM...)
	if err := writeFile(f.Cert, chain, 0o644); err != nil {
		return f, err
	}
	return f, writeFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

func loadOrMakeCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	cpem, cerr := os.ReadFile(certPath)
	kpem, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil {
		cb, _ := pem.Decode(cpem)
		kb, _ := pem.Decode(kpem)
		if cb != nil && kb != nil {
			cert, err1 := x509.ParseCertificate(cb.Bytes)
			key, err2 := x509.ParseECPrivateKey(kb.Bytes)
			if err1 == nil && err2 == nil && time.Now().Before(cert.NotAfter.Add(-31*24*time.Hour)) {
				return cert, key, false, nil
			}
		}
		return nil, nil, false, fmt.Errorf("dev certificate: %s is damaged or expiring; delete the folder to make a new CA", dir)
	}
	if !errors.Is(cerr, fs.ErrNotExist) && cerr != nil {
		return nil, nil, false, fmt.Errorf("dev certificate: %w", cerr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "portico development CA (" + host + ")", Organization: []string{"portico development CA"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, false, err
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, false, err
	}
	if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, false, err
	}
	return cert, key, true, nil
}

// TrustHint says how to trust the CA on this kind of system.
func TrustHint(caPath string) string {
	return fmt.Sprintf("to trust it (once): sudo cp %s /usr/local/share/ca-certificates/portico-dev.crt && sudo update-ca-certificates; "+
		"browsers with their own store (Firefox): import %s under Settings > Certificates > Authorities", caPath, caPath)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n
}

// writeFile writes atomically (a reader never sees half a key).
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("dev certificate: %w", err)
	}
	return os.Rename(tmp, path)
}
