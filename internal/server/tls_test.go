package server

import (
	"crypto/tls"
	"strings"
	"testing"
)

// Every TLS 1.2 suite offered is one Go counts as secure, has forward
// secrecy (ECDHE) and an AEAD cipher; both certificate kinds are served,
// with HTTP/2's mandatory suite (RFC 9113 section 9.2.2) among them.
func TestModernCipherSuites(t *testing.T) {
	secure := map[uint16]bool{}
	for _, cs := range tls.CipherSuites() {
		secure[cs.ID] = true
	}
	kinds := map[string]bool{}
	h2Mandatory := false
	for _, id := range modernCipherSuites() {
		name := tls.CipherSuiteName(id)
		if !secure[id] {
			t.Errorf("%s is in Go's insecure list", name)
		}
		if !strings.HasPrefix(name, "TLS_ECDHE_") {
			t.Errorf("%s has no forward secrecy", name)
		}
		if !strings.Contains(name, "_GCM_") && !strings.Contains(name, "_CHACHA20_POLY1305") {
			t.Errorf("%s is not an AEAD cipher", name)
		}
		kinds[strings.Split(name, "_")[2]] = true
		h2Mandatory = h2Mandatory || id == tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	}
	if !kinds["ECDSA"] || !kinds["RSA"] {
		t.Errorf("suites for ECDSA and RSA certificates wanted, got %v", kinds)
	}
	if !h2Mandatory {
		t.Errorf("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (required by HTTP/2) missing")
	}
}
