package proxy

import (
	"bytes"
	"errors"
)

// respHead is an upstream response's status line and header block, parsed
// in place: fields are offsets into the buffer the head was parsed from.
type respHead struct {
	n        int  // bytes of the head, through the empty line
	proto11  bool // HTTP/1.1 (else HTTP/1.0)
	status   int
	clen     int64 // Content-Length, -1 when absent
	chunked  bool  // Transfer-Encoding: chunked
	close    bool  // the upstream closes the connection after this response
	hasType  bool  // a Content-Type field
	hasCE    bool  // a non-empty Content-Encoding field
	hasTrail bool  // a Trailer field
	fields   []field
	conn     []field // the tokens of Connection fields (name offsets only)
}

// field is one header field: name buf[ns:ne], value buf[vs:ve] (trimmed).
type field struct{ ns, ne, vs, ve int32 }

// maxHeadBytes bounds an upstream response head, as the transport's
// MaxResponseHeaderBytes.
const maxHeadBytes = 1 << 20

var (
	errHeadMalformed = errors.New("malformed response head from upstream")
	errHeadTooLarge  = errors.New("upstream response head too large")
	errBadLength     = errors.New("bad Content-Length from upstream")
	errBadTE         = errors.New("unsupported Transfer-Encoding from upstream")
)

// parseResponseHead parses the response head at the start of buf. It
// returns (0, nil) when buf holds a clean prefix of a head but not its
// end. Lines may end in CRLF or, as Go's client accepts, a bare LF.
// Anything else odd (obs-fold, control bytes, a bad status, a bad or
// conflicting Content-Length, a Transfer-Encoding other than chunked) is
// an error. It allocates nothing once h's slices have grown.
func parseResponseHead(buf []byte, h *respHead) (int, error) {
	h.fields = h.fields[:0]
	h.conn = h.conn[:0]
	h.clen = -1
	h.chunked, h.close, h.hasType, h.hasCE, h.hasTrail = false, false, false, false, false
	// Status line: HTTP/1.x SP+ 3DIGIT [SP reason] EOL
	end, next := lineEnd(buf, 0)
	if end < 0 {
		if len(buf) > maxHeadBytes {
			return 0, errHeadTooLarge
		}
		if !prefixOK(buf) {
			return 0, errHeadMalformed
		}
		return 0, nil
	}
	line := buf[:end]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return 0, errHeadMalformed
	}
	switch line[7] {
	case '1':
		h.proto11 = true
	case '0':
		h.proto11 = false
	default:
		return 0, errHeadMalformed
	}
	p := 9
	for p < len(line) && line[p] == ' ' {
		p++
	}
	if len(line)-p < 3 {
		return 0, errHeadMalformed
	}
	st := 0
	for i := 0; i < 3; i++ {
		c := line[p+i]
		if c < '0' || c > '9' {
			return 0, errHeadMalformed
		}
		st = st*10 + int(c-'0')
	}
	p += 3
	if p < len(line) && line[p] != ' ' {
		return 0, errHeadMalformed
	}
	if st < 100 {
		return 0, errHeadMalformed
	}
	for _, c := range line[p:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, errHeadMalformed
		}
	}
	h.status = st
	keepAlive := false
	p = next
	for {
		end, next = lineEnd(buf, p)
		if end < 0 {
			if len(buf) > maxHeadBytes {
				return 0, errHeadTooLarge
			}
			return 0, nil
		}
		if end == p {
			p = next
			break
		}
		ns := p
		for p < end && tokenByte[buf[p]] {
			p++
		}
		if p == ns || p == end || buf[p] != ':' {
			return 0, errHeadMalformed // obs-fold, space before ':', bad name
		}
		ne := p
		p++
		for p < end && (buf[p] == ' ' || buf[p] == '\t') {
			p++
		}
		vs := p
		for ; p < end; p++ {
			if c := buf[p]; c < ' ' && c != '\t' || c == 0x7f {
				return 0, errHeadMalformed
			}
		}
		ve := end
		for ve > vs && (buf[ve-1] == ' ' || buf[ve-1] == '\t') {
			ve--
		}
		name, val := buf[ns:ne], buf[vs:ve]
		switch {
		case foldEq(name, "content-length"):
			n, ok := parseLength(val)
			if !ok || h.clen >= 0 && h.clen != n {
				return 0, errBadLength
			}
			h.clen = n
		case foldEq(name, "transfer-encoding"):
			if !h.proto11 {
				break // ignored in HTTP/1.0, as Go's client does
			}
			if h.chunked || !foldEq(val, "chunked") {
				return 0, errBadTE
			}
			h.chunked = true
		case foldEq(name, "connection"):
			for i := vs; i < ve; {
				j := i
				for j < ve && buf[j] != ',' {
					j++
				}
				ts, te := i, j
				for ts < te && (buf[ts] == ' ' || buf[ts] == '\t') {
					ts++
				}
				for te > ts && (buf[te-1] == ' ' || buf[te-1] == '\t') {
					te--
				}
				if ts < te {
					t := buf[ts:te]
					switch {
					case foldEq(t, "close"):
						h.close = true
					case foldEq(t, "keep-alive"):
						keepAlive = true
					}
					h.conn = append(h.conn, field{ns: int32(ts), ne: int32(te)})
				}
				i = j + 1
			}
		case foldEq(name, "content-type"):
			h.hasType = true
		case foldEq(name, "content-encoding"):
			if len(val) > 0 {
				h.hasCE = true
			}
		case foldEq(name, "trailer"):
			h.hasTrail = true
		}
		h.fields = append(h.fields, field{int32(ns), int32(ne), int32(vs), int32(ve)})
		p = next
	}
	if !h.proto11 && !keepAlive {
		h.close = true
	}
	if h.chunked {
		h.clen = -1 // as Go's client: chunked wins, and the length is dropped
	}
	h.n = p
	return p, nil
}

// lineEnd finds the end of the line starting at p: end excludes the CR
// LF or LF, next is the start of the following line. end < 0 when no LF
// is buffered yet; a CR not followed by LF is the caller's problem (it
// shows up as a control byte in the line).
func lineEnd(buf []byte, p int) (end, next int) {
	i := bytes.IndexByte(buf[p:], '\n')
	if i < 0 {
		return -1, -1
	}
	i += p
	if i > p && buf[i-1] == '\r' {
		return i - 1, i + 1
	}
	return i, i + 1
}

// prefixOK reports whether an incomplete status line could still be valid.
func prefixOK(b []byte) bool {
	const want = "HTTP/1."
	n := min(len(b), len(want))
	return string(b[:n]) == want[:n]
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// foldEq compares b (a header name or value in either engine's form) with
// a lower-case ASCII string, ignoring the case of b's letters.
func foldEq[S bstr](b S, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// foldEqBytes compares two ASCII strings case-insensitively.
func foldEqBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
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

// appendCanonical appends a header name as Go canonicalizes it
// (textproto.CanonicalMIMEHeaderKey) for a token.
func appendCanonical(b, name []byte) []byte {
	upper := true
	for _, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

var tokenByte [256]bool

func init() {
	for c := '0'; c <= '9'; c++ {
		tokenByte[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		tokenByte[c] = true
		tokenByte[c-32] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tokenByte[c] = true
	}
}
