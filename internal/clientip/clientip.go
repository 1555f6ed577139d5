// Package clientip owns the answer to "who is the client?": the one
// function every part of portico asks (access logs, CGI and WSGI
// REMOTE_ADDR, the proxy's ip_hash, allow/deny lists and rate limits), so
// that they can never disagree.
//
// The answer starts from the connection's peer address. On a listener
// with proxy_protocol, that is already the address the load balancer's
// PROXY header names (Listener, before either engine reads a byte). Then,
// only when the peer is one of trusted_proxies, X-Forwarded-For is read
// from the right: each address a trusted proxy appended is skipped, and
// the first one that is not trusted is the client (what nginx's realip
// module does with real_ip_recursive on). A client that is not behind a
// trusted proxy cannot choose its address by sending the header.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds client addresses. A nil *Resolver trusts nobody: the
// client is always the peer.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting the proxies in trusted (masked
// prefixes, as config.ParsePrefix returns them).
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: append([]netip.Prefix(nil), trusted...)}
}

// Trusted reports whether a is one of the trusted proxies.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// HasTrusted reports whether any proxy is trusted.
func (r *Resolver) HasTrusted() bool { return r != nil && len(r.trusted) > 0 }

// Peer parses a RemoteAddr ("1.2.3.4:5678", "[::1]:5678", or a bare
// address). The result is unmapped (::ffff:1.2.3.4 is 1.2.3.4); it is
// the zero Addr when remoteAddr is not an address (a unix socket).
func Peer(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// Client returns the client address of a request that arrived from the
// peer remoteAddr carrying the X-Forwarded-For field values xff (each
// value a comma-separated list; later fields were appended later).
// fromPeer reports whether the answer is the peer itself, so that its
// port (in remoteAddr) belongs to the client too.
//
// It does not allocate.
func (r *Resolver) Client(remoteAddr string, xff []string) (client netip.Addr, fromPeer bool) {
	peer := Peer(remoteAddr)
	if len(xff) == 0 || !r.Trusted(peer) {
		return peer, true
	}
	// From the right: the last field's last element was appended by the
	// peer; skip every trusted hop.
	fromPeer = true
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for v != "" {
			var elem string
			if k := strings.LastIndexByte(v, ','); k >= 0 {
				elem, v = v[k+1:], v[:k]
			} else {
				elem, v = v, ""
			}
			elem = strings.Trim(elem, " \t")
			if elem == "" {
				continue
			}
			a, ok := parseElem(elem)
			if !ok {
				// Garbage where a trusted proxy wrote: the last trusted
				// hop is the best answer there is.
				return peer, fromPeer
			}
			peer, fromPeer = a, false
			if !r.Trusted(a) {
				return a, false
			}
		}
	}
	// Every hop trusted: the leftmost is the client.
	return peer, fromPeer
}

// parseElem reads one X-Forwarded-For element: an address, optionally
// with a port ("1.2.3.4:80", "[::1]:80"), as some proxies write it.
func parseElem(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// FromHTTP is Client for a net/http request.
func (r *Resolver) FromHTTP(req *http.Request) netip.Addr {
	a, _ := r.Client(req.RemoteAddr, req.Header["X-Forwarded-For"])
	return a
}

// HostPort returns the client address and port of a net/http request as
// CGI and WSGI want them (REMOTE_ADDR, REMOTE_PORT): the port only when
// the client is the peer, "" otherwise; the whole RemoteAddr when it is
// not an address at all (a unix socket peer).
func (r *Resolver) HostPort(req *http.Request) (host, port string) {
	a, fromPeer := r.Client(req.RemoteAddr, req.Header["X-Forwarded-For"])
	if fromPeer {
		if ap, err := netip.ParseAddrPort(req.RemoteAddr); err == nil {
			return ap.Addr().Unmap().String(), itoa(ap.Port())
		}
		if !a.IsValid() {
			return req.RemoteAddr, ""
		}
	}
	return a.String(), ""
}

func itoa(n uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}
