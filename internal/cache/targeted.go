package cache

import "net/http"

// Targeted cache-control fields (RFC 9213): Portico-Cache-Control, aimed
// at portico alone, then CDN-Cache-Control, aimed at every CDN-like
// cache. The first one present and valid replaces Cache-Control for
// every decision portico makes about the response (storing, freshness,
// revalidation). Portico-Cache-Control is portico's alone and is not sent
// on; CDN-Cache-Control is forwarded, as the public cache test suite
// expects of a CDN: it is aimed at every CDN-like cache, and another one
// (a CDN in front of portico) may use it too. Cache-Control reaches the
// client unchanged for the caches after portico.
const (
	porticoCacheControl = "Portico-Cache-Control"
	cdnCacheControl     = "Cdn-Cache-Control"
)

// targetedField reports whether k is portico's own targeted field, never
// forwarded.
func targetedField(k string) bool {
	return k == porticoCacheControl
}

// responseDirectives returns the field portico takes the response's
// directives from: a valid targeted field, else Cache-Control. An invalid
// targeted field (not a Structured Field dictionary, or a delta directive
// that is not an integer) is ignored as a whole (RFC 9213 section 2.1).
func responseDirectives(hdr http.Header) []string {
	for _, f := range [...]string{porticoCacheControl, cdnCacheControl} {
		if v := hdr[f]; len(v) > 0 && validTargeted(v) {
			return v
		}
	}
	return hdr["Cache-Control"]
}

// stripTargeted deletes portico's targeted field from a header going to
// the client.
func stripTargeted(h http.Header) {
	delete(h, porticoCacheControl)
}

// validTargeted checks lines as one Structured Field dictionary (RFC 8941
// section 3.2) whose delta-seconds directives are integers.
func validTargeted(lines []string) bool {
	for _, line := range lines {
		p := sfParser{s: line}
		if !p.dictionary() {
			return false
		}
	}
	return true
}

// sfParser is a small RFC 8941 dictionary checker: it validates, it does
// not build values (the Cache-Control parser reads the accepted text).
type sfParser struct {
	s string
	i int
}

func (p *sfParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) sp() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) dictionary() bool {
	p.sp()
	if p.i == len(p.s) {
		return true // an empty field is an empty dictionary
	}
	for {
		key, ok := p.key()
		if !ok {
			return false
		}
		kind := byte('?') // a bare key is boolean true
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if kind, ok = p.bareItem(); !ok {
				return false
			}
		}
		if !p.params() {
			return false
		}
		switch key {
		case "max-age", "s-maxage", "stale-while-revalidate", "stale-if-error":
			if kind != 'i' {
				return false // wrong type: the field is ignored
			}
		}
		p.ows()
		if p.i == len(p.s) {
			return true
		}
		if p.s[p.i] != ',' {
			return false
		}
		p.i++
		p.ows()
		if p.i == len(p.s) {
			return false // trailing comma
		}
	}
}

func (p *sfParser) key() (string, bool) {
	start := p.i
	if p.i >= len(p.s) || !(p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] == '*') {
		return "", false
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], true
}

func (p *sfParser) params() bool {
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.sp()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

// bareItem reads one bare item and returns its kind: 'i' integer, 'd'
// decimal, 's' string, 't' token, 'b' byte sequence, '?' boolean.
func (p *sfParser) bareItem() (byte, bool) {
	if p.i >= len(p.s) {
		return 0, false
	}
	switch c := p.s[p.i]; {
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == '"':
		p.i++
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			switch {
			case c == '\\':
				if p.i >= len(p.s) || p.s[p.i] != '"' && p.s[p.i] != '\\' {
					return 0, false
				}
				p.i++
			case c == '"':
				return 's', true
			case c < 0x20 || c > 0x7e:
				return 0, false
			}
		}
		return 0, false
	case c == ':':
		p.i++
		for p.i < len(p.s) && p.s[p.i] != ':' {
			c := p.s[p.i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
				return 0, false
			}
			p.i++
		}
		if p.i >= len(p.s) {
			return 0, false
		}
		p.i++
		return 'b', true
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return '?', true
		}
		return 0, false
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '*':
		p.i++
		for p.i < len(p.s) && tokenChar(p.s[p.i]) {
			p.i++
		}
		return 't', true
	}
	return 0, false
}

func (p *sfParser) number() (byte, bool) {
	if p.s[p.i] == '-' {
		p.i++
	}
	start, dot := p.i, -1
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c >= '0' && c <= '9' {
			p.i++
			continue
		}
		if c == '.' && dot < 0 {
			dot = p.i
			p.i++
			continue
		}
		break
	}
	n := p.i - start
	switch {
	case n == 0:
		return 0, false
	case dot < 0:
		return 'i', n <= 15
	default:
		frac := p.i - dot - 1
		return 'd', dot-start <= 12 && frac >= 1 && frac <= 3
	}
}

// tokenChar is tchar plus ":" and "/" (RFC 8941 sf-token).
func tokenChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~', ':', '/':
		return true
	}
	return false
}
