package static

import (
	"strings"

	"portico/internal/compress"
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
// send for an Accept-Encoding header value, br before zstd before gzip
// when the client weighs them equally, or -1 for the unencoded file. The
// negotiation itself is compress.Negotiate's (one owner for both the
// precompressed siblings and on-the-fly compression).
func pickEncoding(ae string, have *[numEnc]bool) int {
	var buf [numEnc]compress.Encoding
	order := buf[:0]
	for i, ok := range have {
		if ok {
			order = append(order, encodingOf[i])
		}
	}
	return staticIndex(compress.Negotiate(ae, order))
}

// encodingOf is each precompressed variant's encoding.
var encodingOf = [numEnc]compress.Encoding{encBr: compress.Brotli, encZstd: compress.Zstd, encGzip: compress.Gzip}

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
			return compress.ParseQ(params) > 0, true
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
