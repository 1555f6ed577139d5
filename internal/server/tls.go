package server

import "crypto/tls"

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
