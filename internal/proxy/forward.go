package proxy

import (
	"net/http"
	"strings"
)

// The header rules of both engines (proxy.go's rewrite for net/http,
// fastheaders.go for the fast path): which fields are hop-by-hop, which
// protocol upgrade is forwarded, and the forwarding fields portico sends
// (X-Forwarded-For, -Proto, -Host, Forwarded, Via). They are generic over
// the two engines' forms of a field: S is string for net/http's maps,
// []byte for the fast path's raw header, so neither converts.

// bstr is a header name or value in either engine's form.
type bstr interface{ ~string | ~[]byte }

// hopByHop reports whether a field is connection-specific, so never
// forwarded in either direction as it is: RFC 9110 section 7.6.1's
// Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and
// Upgrade, the proxy authentication pair, Trailer (as Go's ReverseProxy),
// and HTTP2-Settings (RFC 9113 section 3.2.1), which only means something
// with an h2c upgrade that portico never forwards (upgradeFor).
func hopByHop[S bstr](name S) bool {
	switch len(name) {
	case 2:
		return foldEq(name, "te")
	case 7:
		return foldEq(name, "trailer") || foldEq(name, "upgrade")
	case 10:
		return foldEq(name, "connection") || foldEq(name, "keep-alive")
	case 14:
		return foldEq(name, "http2-settings")
	case 16:
		return foldEq(name, "proxy-connection")
	case 17:
		return foldEq(name, "transfer-encoding")
	case 18:
		return foldEq(name, "proxy-authenticate")
	case 19:
		return foldEq(name, "proxy-authorization")
	}
	return false
}

// maxConnTokens bounds the field names a Connection field may list; the
// fast path hands longer lists to net/http, where they are only slower.
const maxConnTokens = 16

// appendConnTokens appends the tokens of a Connection field value to dst
// (of capacity maxConnTokens on the fast path). ok is false when they do
// not fit in dst's capacity.
func appendConnTokens(dst []string, v string) (_ []string, ok bool) {
	for v != "" {
		t, rest, _ := strings.Cut(v, ",")
		v = rest
		if t = strings.Trim(t, " \t"); t == "" {
			continue
		}
		if len(dst) == cap(dst) {
			return dst, false
		}
		dst = append(dst, t)
	}
	return dst, true
}

// connectionNamed reports whether the Connection field listed name: such
// a field is hop-by-hop too (RFC 9110 section 7.6.1).
func connectionNamed[S bstr](conn []string, name S) bool {
	for _, t := range conn {
		if len(t) == len(name) && foldEqual(name, t) {
			return true
		}
	}
	return false
}

func foldEqual[S bstr](a S, b string) bool {
	for i := 0; i < len(b); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// upgradeFor returns the protocol upgrade portico forwards for a request,
// "" for none: the Upgrade value when Connection lists "upgrade" (as Go's
// ReverseProxy, which tunnels a 101 answer: WebSockets), except h2c.
//
// Threat: h2c smuggling. A client asks the upstream to switch the
// connection to cleartext HTTP/2 (Upgrade: h2c, HTTP2-Settings); an
// upstream that agrees gets a tunnel through portico in which every
// further request escapes its routes and limits. So an upgrade that names
// h2c is dropped whole (the request goes as a plain one), and
// HTTP2-Settings is hop-by-hop.
func upgradeFor(conn []string, upgrade string) string {
	if upgrade == "" || !connectionNamed(conn, "upgrade") {
		return ""
	}
	for v := upgrade; v != ""; {
		t, rest, _ := strings.Cut(v, ",")
		v = rest
		if p, _, _ := strings.Cut(strings.Trim(t, " \t"), "/"); foldEq(p, "h2c") {
			return ""
		}
	}
	return upgrade
}

// forwardIn is what the forwarding fields are decided from.
type forwardIn[S bstr] struct {
	peer    string // the client's RemoteAddr
	trusted bool   // the peer is one of trusted_proxies
	https   bool   // the client spoke TLS to portico
	host    string // the client's Host ("" for none)
	// proto is the protocol portico received the request in: "1.0",
	// "1.1" or "2.0" (RFC 9110 section 7.6.3).
	proto string
	// The incoming fields: X-Forwarded-For, -Proto, -Host and Forwarded
	// as received (Connection cannot remove them), Via as left after
	// hop-by-hop removal.
	xff, xfp, xfh, fwd, via []S
}

// fwdField is one forwarding field to send. With join, it is a single
// field: the prior values, then own, ", "-separated. Otherwise the prior
// fields go as they are, or, when there are none, own alone (no field
// when own is "").
type fwdField[S bstr] struct {
	name  string
	prior []S
	own   string
	join  bool
}

// numFwdFields is the length of forwardFields' answer.
const numFwdFields = 5

// forwardFields decides the forwarding fields sent upstream. Only a
// trusted peer's claims are kept and appended to (an untrusted client
// could otherwise pick the address an app logs or rate-limits by); Via
// always grows by portico. The answer is an array, not a slice, so the
// fast path allocates nothing (values stored through a pointer argument
// would escape).
func forwardFields[S bstr](in *forwardIn[S]) (out [numFwdFields]fwdField[S]) {
	xff, xfp, xfh, fwd := in.xff, in.xfp, in.xfh, in.fwd
	if !in.trusted {
		xff, xfp, xfh, fwd = nil, nil, nil, nil
	}
	proto := "http"
	if in.https {
		proto = "https"
	}
	out[0] = fwdField[S]{name: "X-Forwarded-For", prior: xff, own: clientIP(in.peer), join: true}
	out[1] = fwdField[S]{name: "X-Forwarded-Proto", prior: xfp, own: proto}
	out[2] = fwdField[S]{name: "X-Forwarded-Host", prior: xfh, own: in.host}
	out[3] = fwdField[S]{name: "Forwarded", prior: fwd}
	out[4] = fwdField[S]{name: "Via", prior: in.via, own: viaPortico(in.proto), join: true}
	return out
}

// viaPortico is portico's Via entry for a message received in proto.
func viaPortico(proto string) string {
	switch proto {
	case "1.0":
		return "1.0 portico"
	case "2.0":
		return "2.0 portico"
	}
	return "1.1 portico"
}

// Shared one-value slices for the values forwardFields uses most, so
// setFields allocates none for them.
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
	viaValue   = []string{"1.1 portico"}
	via2       = []string{"2.0 portico"}
	via10      = []string{"1.0 portico"}
)

func oneValue(s string) []string {
	switch s {
	case "http":
		return protoHTTP
	case "https":
		return protoHTTPS
	case "1.1 portico":
		return viaValue
	case "2.0 portico":
		return via2
	case "1.0 portico":
		return via10
	}
	return []string{s}
}

// setFields renders forwarding fields into a net/http header.
func setFields(hdr http.Header, fs []fwdField[string]) {
	for _, f := range fs {
		switch {
		case f.join && len(f.prior) > 0:
			hdr[f.name] = []string{strings.Join(f.prior, ", ") + ", " + f.own}
		case len(f.prior) > 0:
			hdr[f.name] = f.prior
		case f.own != "":
			hdr[f.name] = oneValue(f.own)
		default:
			delete(hdr, f.name)
		}
	}
}

// appendFields renders forwarding fields as header lines.
func appendFields(b []byte, fs []fwdField[[]byte]) []byte {
	for _, f := range fs {
		switch {
		case f.join:
			b = append(b, f.name...)
			b = append(b, ": "...)
			for _, v := range f.prior {
				b = append(b, v...)
				b = append(b, ", "...)
			}
			b = append(b, f.own...)
			b = append(b, "\r\n"...)
		case len(f.prior) > 0:
			for _, v := range f.prior {
				b = append(b, f.name...)
				b = append(b, ": "...)
				b = append(b, v...)
				b = append(b, "\r\n"...)
			}
		case f.own != "":
			b = append(b, f.name...)
			b = append(b, ": "...)
			b = append(b, f.own...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// teTrailers reports whether a TE field value asks for trailers; then
// "TE: trailers" is sent upstream (Go's ReverseProxy does the same), and
// nothing else of TE.
func teTrailers[S bstr](v S) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		t := v[:i]
		if i < len(v) {
			v = v[i+1:]
		} else {
			v = v[:0]
		}
		s, e := 0, len(t)
		for s < e && (t[s] == ' ' || t[s] == '\t') {
			s++
		}
		for e > s && (t[e-1] == ' ' || t[e-1] == '\t') {
			e--
		}
		if foldEq(t[s:e], "trailers") {
			return true
		}
	}
	return false
}
