// Package compress is portico's on-the-fly response compression: the
// Accept-Encoding negotiation, the list of compressible media types, pooled
// encoders (gzip and zstd from github.com/klauspost/compress, brotli from
// github.com/andybalholm/brotli) and a net/http handler that compresses what
// a route's handler writes.
//
// Where it sits in a route (server.Build puts it there):
//
//	layers -> [Normalize -> cache] -> Handler -> proxy | wsgi | cgi
//	layers -> static (compresses each file once, in its open-file cache)
//
// Handler sits below a route's cache, so the cache stores what it
// produced (one variant per encoding, each with Vary: Accept-Encoding)
// and serves hits without compressing again. Normalize, above the cache,
// rewrites the request's Accept-Encoding to the one token Handler will
// choose, so the cache's Vary key holds "br" or "gzip" rather than each
// browser's spelling of its list: each variant is stored once.
package compress

import "strings"

// Encoding is a content coding portico can produce.
type Encoding uint8

// The encodings, and None for the unencoded (identity) representation.
const (
	None Encoding = iota
	Gzip
	Brotli
	Zstd
	numEncodings
)

var tokens = [numEncodings]string{"identity", "gzip", "br", "zstd"}

// Token is the encoding's name in Content-Encoding and Accept-Encoding.
func (e Encoding) Token() string {
	if e >= numEncodings {
		return "identity"
	}
	return tokens[e]
}

// ParseEncoding reads a configured encoding name ("gzip", "br", "zstd").
func ParseEncoding(s string) (Encoding, bool) {
	switch s {
	case "gzip":
		return Gzip, true
	case "br":
		return Brotli, true
	case "zstd":
		return Zstd, true
	}
	return None, false
}

// Negotiate picks the encoding to send for an Accept-Encoding value
// (RFC 9110 section 12.5.3): among order (the configured encodings, most
// preferred first), the one with the highest q-value above zero; on equal
// q-values the earlier in order. "*" gives its q-value to encodings the
// value does not name, "x-gzip" means gzip, and a malformed q-value counts
// as 0 (refused). An empty or absent value, or one that accepts none of
// order, gives None. It does not allocate.
func Negotiate(ae string, order []Encoding) Encoding {
	if ae == "" || len(order) == 0 {
		return None
	}
	var q [numEncodings]int // thousandths; -1: not named
	for i := range q {
		q[i] = -1
	}
	star := -1
	for ae != "" {
		var item string
		if i := strings.IndexByte(ae, ','); i >= 0 {
			item, ae = ae[:i], ae[i+1:]
		} else {
			item, ae = ae, ""
		}
		tok, params := item, ""
		if i := strings.IndexByte(item, ';'); i >= 0 {
			tok, params = item[:i], item[i+1:]
		}
		tok = strings.TrimSpace(tok)
		qv := ParseQ(params)
		switch {
		case tok == "*":
			star = qv
		case strings.EqualFold(tok, "gzip"), strings.EqualFold(tok, "x-gzip"):
			q[Gzip] = max(q[Gzip], qv)
		case strings.EqualFold(tok, "br"):
			q[Brotli] = max(q[Brotli], qv)
		case strings.EqualFold(tok, "zstd"):
			q[Zstd] = max(q[Zstd], qv)
		}
	}
	best, bestQ := None, 0
	for _, e := range order {
		if e == None || e >= numEncodings {
			continue
		}
		v := q[e]
		if v < 0 {
			v = star
		}
		if v > bestQ {
			best, bestQ = e, v
		}
	}
	return best
}

// ParseQ reads the q parameter of ";q=0.5"-style parameters (RFC 9110
// section 12.4.2), in thousandths: missing means 1000, malformed or above 1
// means 0. Every Accept-* parser of portico uses it.
func ParseQ(params string) int {
	for params != "" {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		p = strings.TrimSpace(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		v := strings.TrimSpace(p[2:])
		if v == "" || (v[0] != '0' && v[0] != '1') {
			return 0
		}
		n := int(v[0]-'0') * 1000
		if len(v) > 1 {
			if v[1] != '.' || len(v) > 5 {
				return 0
			}
			mul := 100
			for _, c := range v[2:] {
				if c < '0' || c > '9' {
					return 0
				}
				n += int(c-'0') * mul
				mul /= 10
			}
		}
		if n > 1000 {
			return 0
		}
		return n
	}
	return 1000
}
