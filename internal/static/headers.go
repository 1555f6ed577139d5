package static

import (
	"strings"
)

// Request header parsers of the hot path. They allocate nothing.

// Precompressed encodings, in order of preference when the client weighs
// them equally.
const (
	encBr = iota
	encZstd
	encGzip
	numEnc
)

var (
	encTokens = [numEnc]string{"br", "zstd", "gzip"}
	encExts   = [numEnc]string{".br", ".zst", ".gz"}
)

// pickEncoding chooses which of the available precompressed variants to
// send for an Accept-Encoding header value (RFC 9110 12.5.3): the one with
// the highest q-value above zero, br before zstd before gzip on ties. "*"
// covers encodings not named; "q=0" refuses one. It returns -1 for the
// unencoded file.
func pickEncoding(ae string, have *[numEnc]bool) int {
	var q [numEnc]int // thousandths; -1 = not named
	q[0], q[1], q[2] = -1, -1, -1
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
		qv := parseQ(params)
		switch {
		case tok == "*":
			star = qv
		case strings.EqualFold(tok, "br"):
			q[encBr] = qv
		case strings.EqualFold(tok, "zstd"):
			q[encZstd] = qv
		case strings.EqualFold(tok, "gzip"), strings.EqualFold(tok, "x-gzip"):
			q[encGzip] = qv
		}
	}
	best, bestQ := -1, 0
	for i := 0; i < numEnc; i++ {
		if !have[i] {
			continue
		}
		v := q[i]
		if v < 0 {
			v = star
		}
		if v > bestQ {
			best, bestQ = i, v
		}
	}
	return best
}

// parseQ reads the q parameter from ";q=0.5"-style parameters, in
// thousandths. Missing means 1000; malformed means 0 (refused).
func parseQ(params string) int {
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

// acceptsHTML reports whether an Accept header value names text/html with a
// non-zero q, as browsers' page navigations do. "*/*" alone does not count:
// a script or image fetch must not get the SPA's index page.
func acceptsHTML(accept []string) bool {
	for _, a := range accept {
		if html, named := acceptHTMLItem(a); named {
			return html
		}
	}
	return false
}

// acceptsHTMLValue is acceptsHTML for a single field value (the fast
// path's, which never sees a repeated Accept).
func acceptsHTMLValue(a string) bool {
	html, _ := acceptHTMLItem(a)
	return html
}

// acceptHTMLItem reads one Accept value: named says whether it has a
// text/html item, html whether that item's q is non-zero.
func acceptHTMLItem(a string) (html, named bool) {
	for a != "" {
		var item string
		if i := strings.IndexByte(a, ','); i >= 0 {
			item, a = a[:i], a[i+1:]
		} else {
			item, a = a, ""
		}
		typ, params := item, ""
		if i := strings.IndexByte(item, ';'); i >= 0 {
			typ, params = item[:i], item[i+1:]
		}
		if strings.EqualFold(strings.TrimSpace(typ), "text/html") {
			return parseQ(params) > 0, true
		}
	}
	return false, false
}

// etagListMatch reports whether the entity tag etag (quoted, strong) is in
// the If-None-Match / If-Match list value. A value received on several
// field lines holds them separated by "\n" (fieldLines); a malformed
// element ends the reading of its line only. weak selects the weak
// comparison (W/ prefixes ignored, RFC 9110 8.8.3.2); with strong
// comparison a weak tag never matches. "*" matches any current
// representation.
func etagListMatch(list, etag string, weak bool) bool {
	for list != "" {
		v := list
		if i := strings.IndexByte(list, '\n'); i >= 0 {
			v, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		for {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			isWeak := false
			if strings.HasPrefix(v, "W/") {
				isWeak = true
				v = v[2:]
			}
			if v == "" || v[0] != '"' {
				break // malformed: stop reading this line
			}
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				break
			}
			tag := v[:end+2]
			v = v[end+2:]
			if tag == etag && (weak || !isWeak) {
				return true
			}
		}
	}
	return false
}
