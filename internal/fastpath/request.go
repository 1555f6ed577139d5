package fastpath

import (
	"time"
	"unsafe"
)

// Request is one parsed HTTP/1.x request as the fast path sees it: a GET or
// HEAD without a body, and the few header fields a static file server
// needs.
//
// Lifetime: every string field except Method, Proto and RemoteAddr points
// into the connection's pooled read buffer (unsafe.String, no copy). They
// are valid only until Handler.ServeFast returns; the engine then discards
// the request's bytes and the buffer is refilled by the next read. A
// handler must copy any of them it keeps (a cache key, a log line in a
// queue). Handlers called by the engine run synchronously on the
// connection's goroutine, so reading them during the call is safe.
type Request struct {
	Method     string // "GET" or "HEAD"
	Proto      string // "HTTP/1.1" or "HTTP/1.0"
	ProtoMinor int    // 1 or 0
	RemoteAddr string // the peer's address, as net/http's Request.RemoteAddr

	// Start is when the engine had the whole request, from the clock
	// that also gives the response's Date: a handler's start time for
	// logs and metrics, without another time.Now.
	Start time.Time

	// URI is the request target exactly as received (origin form: the
	// path and, if any, "?" and the query), like http.Request.RequestURI.
	URI string
	// RawPath is the path part of URI, still escaped.
	RawPath string
	// Path is RawPath with %XX escapes decoded, like url.URL.Path. It is
	// RawPath itself when RawPath has no escapes.
	Path string
	// Query is the part of URI after the first "?", like url.URL.RawQuery.
	Query string

	// Header fields; "" when absent. A request that repeats one of them is
	// never served by the fast path.
	Host              string
	Connection        string
	AcceptEncoding    string
	Accept            string
	IfNoneMatch       string
	IfModifiedSince   string
	IfMatch           string
	IfUnmodifiedSince string
	Range             string
	IfRange           string
	UserAgent         string
	Referer           string
	Authorization     string

	// RequestID is the request's X-Request-ID as the server assigned it
	// ("" when request ids are off). The engine does not parse it: the
	// server sets it before routing.
	RequestID string

	// KeepAlive says whether the connection stays open after the
	// response, by the rules net/http applies: HTTP/1.1 unless
	// "Connection: close", HTTP/1.0 only with "Connection: keep-alive".
	KeepAlive bool

	pathBuf []byte // decoded path storage, reused across requests
}

// parseResult says what to do with the bytes buffered so far.
type parseResult int

const (
	parseNeedMore parseResult = iota // no complete header block yet
	parseOK                          // a complete fast-path request
	parseHandOff                     // anything else: net/http decides
)

// header field bits, to refuse repeated fields
const (
	hHost = 1 << iota
	hConnection
	hAcceptEncoding
	hAccept
	hIfNoneMatch
	hIfModifiedSince
	hIfMatch
	hIfUnmodifiedSince
	hRange
	hIfRange
	hUserAgent
	hReferer
	hAuthorization
	hContentLength
)

// bstr returns b as a string without copying. See Request for the
// lifetime rules.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseRequest parses the request at the start of buf. On parseOK it
// returns the length of the request (request line and header block,
// through the empty line) and fills req. Anything it does not fully
// understand, or that the fast path must not answer (other methods,
// bodies, Expect, Upgrade, obs-fold, bare CR or LF, NUL and other control
// bytes, repeated fields, absolute-form targets), is parseHandOff, so
// net/http answers it exactly as it would without the fast path.
// parseNeedMore means buf holds a clean prefix of a request but not its
// end yet.
//
// It allocates nothing: strings in req point into buf.
func parseRequest(buf []byte, req *Request) (int, parseResult) {
	// Request line: method SP request-target SP HTTP-version CRLF.
	var p int
	switch {
	case len(buf) >= 4 && buf[0] == 'G' && buf[1] == 'E' && buf[2] == 'T' && buf[3] == ' ':
		req.Method, p = "GET", 4
	case len(buf) >= 5 && buf[0] == 'H' && buf[1] == 'E' && buf[2] == 'A' && buf[3] == 'D' && buf[4] == ' ':
		req.Method, p = "HEAD", 5
	default:
		if len(buf) < 5 && prefixOf(buf, "GET ", "HEAD ") {
			return 0, parseNeedMore
		}
		return 0, parseHandOff
	}
	if p == len(buf) {
		return 0, parseNeedMore
	}
	if buf[p] != '/' {
		return 0, parseHandOff // absolute form, "*", or a second space
	}
	start := p
	q := -1
	escapes := false
	for ; p < len(buf); p++ {
		c := buf[p]
		if c == ' ' {
			break
		}
		if uriChar[c] == 0 {
			return 0, parseHandOff
		}
		switch c {
		case '?':
			if q < 0 {
				q = p
			}
		case '%':
			if q < 0 {
				escapes = true
			}
		}
	}
	if p == len(buf) {
		return 0, parseNeedMore
	}
	uri := buf[start:p]
	p++ // the space
	// "HTTP/1.1\r\n"
	if len(buf)-p < 10 {
		if prefixOf(buf[p:], "HTTP/1.1\r\n", "HTTP/1.0\r\n") {
			return 0, parseNeedMore
		}
		return 0, parseHandOff
	}
	v := buf[p : p+10]
	if string(v[:7]) != "HTTP/1." || v[8] != '\r' || v[9] != '\n' {
		return 0, parseHandOff
	}
	switch v[7] {
	case '1':
		req.Proto, req.ProtoMinor = "HTTP/1.1", 1
	case '0':
		req.Proto, req.ProtoMinor = "HTTP/1.0", 0
	default:
		return 0, parseHandOff
	}
	p += 10

	// Header fields.
	var seen uint32
	for {
		if p >= len(buf) {
			return 0, parseNeedMore
		}
		if buf[p] == '\r' {
			if p+1 >= len(buf) {
				return 0, parseNeedMore
			}
			if buf[p+1] != '\n' {
				return 0, parseHandOff
			}
			p += 2
			break
		}
		// field-name ":" OWS field-value OWS CRLF
		ns := p
		for p < len(buf) && tokenChar[buf[p]] != 0 {
			p++
		}
		if p == len(buf) {
			return 0, parseNeedMore
		}
		if buf[p] != ':' || p == ns {
			return 0, parseHandOff // obs-fold, space before ":", bad name
		}
		name := buf[ns:p]
		p++
		for p < len(buf) && (buf[p] == ' ' || buf[p] == '\t') {
			p++
		}
		vs := p
		for p < len(buf) && buf[p] != '\r' {
			c := buf[p]
			if c < ' ' && c != '\t' || c == 0x7f {
				return 0, parseHandOff // NUL, bare LF, other controls
			}
			p++
		}
		if p+1 >= len(buf) {
			return 0, parseNeedMore
		}
		if buf[p+1] != '\n' {
			return 0, parseHandOff
		}
		ve := p
		for ve > vs && (buf[ve-1] == ' ' || buf[ve-1] == '\t') {
			ve--
		}
		p += 2
		val := bstr(buf[vs:ve])
		var bit uint32
		var dst *string
		switch len(name) {
		case 4:
			if eqFold(name, "host") {
				bit, dst = hHost, &req.Host
			}
		case 5:
			if eqFold(name, "range") {
				bit, dst = hRange, &req.Range
			}
		case 6:
			if eqFold(name, "accept") {
				bit, dst = hAccept, &req.Accept
			} else if eqFold(name, "expect") {
				return 0, parseHandOff
			}
		case 7:
			if eqFold(name, "referer") {
				bit, dst = hReferer, &req.Referer
			} else if eqFold(name, "upgrade") {
				return 0, parseHandOff
			}
		case 8:
			if eqFold(name, "if-match") {
				bit, dst = hIfMatch, &req.IfMatch
			} else if eqFold(name, "if-range") {
				bit, dst = hIfRange, &req.IfRange
			}
		case 10:
			if eqFold(name, "connection") {
				bit, dst = hConnection, &req.Connection
			} else if eqFold(name, "user-agent") {
				bit, dst = hUserAgent, &req.UserAgent
			}
		case 13:
			if eqFold(name, "if-none-match") {
				bit, dst = hIfNoneMatch, &req.IfNoneMatch
			} else if eqFold(name, "authorization") {
				bit, dst = hAuthorization, &req.Authorization
			}
		case 14:
			if eqFold(name, "content-length") {
				if val != "0" || seen&hContentLength != 0 {
					return 0, parseHandOff
				}
				seen |= hContentLength
			}
		case 15:
			if eqFold(name, "accept-encoding") {
				bit, dst = hAcceptEncoding, &req.AcceptEncoding
			}
		case 16:
			if eqFold(name, "proxy-connection") {
				return 0, parseHandOff
			}
		case 17:
			if eqFold(name, "if-modified-since") {
				bit, dst = hIfModifiedSince, &req.IfModifiedSince
			} else if eqFold(name, "transfer-encoding") {
				return 0, parseHandOff
			}
		case 19:
			if eqFold(name, "if-unmodified-since") {
				bit, dst = hIfUnmodifiedSince, &req.IfUnmodifiedSince
			}
		}
		if dst != nil {
			if seen&bit != 0 {
				return 0, parseHandOff // repeated: let net/http combine or refuse
			}
			seen |= bit
			*dst = val
		}
	}

	// Host: required by HTTP/1.1 and must be a valid host header.
	if seen&hHost == 0 {
		if req.ProtoMinor == 1 {
			return 0, parseHandOff
		}
	} else if !validHost(req.Host) {
		return 0, parseHandOff
	}

	// Keep-alive, as net/http decides it; mixed tokens go to net/http.
	if req.Connection == "" {
		req.KeepAlive = req.ProtoMinor == 1
	} else {
		hasClose, hasKeep, ok := connectionTokens(req.Connection)
		if !ok || hasClose && hasKeep {
			return 0, parseHandOff
		}
		if req.ProtoMinor == 1 {
			req.KeepAlive = !hasClose
		} else {
			req.KeepAlive = hasKeep
		}
	}

	// The target: path and query, the path decoded.
	req.URI = bstr(uri)
	path := uri
	req.Query = ""
	if q >= 0 {
		path = buf[start:q]
		req.Query = bstr(buf[q+1 : start+len(uri)])
	}
	req.RawPath = bstr(path)
	if !escapes {
		req.Path = req.RawPath
	} else {
		d, ok := unescapePath(req.pathBuf[:0], path)
		if !ok {
			return 0, parseHandOff
		}
		req.pathBuf = d
		req.Path = bstr(d)
	}
	return p, parseOK
}

// reset clears the header fields before a parse.
func (req *Request) reset() {
	pb, ra := req.pathBuf, req.RemoteAddr
	*req = Request{pathBuf: pb, RemoteAddr: ra}
}

// prefixOf reports whether b is a prefix of one of the candidates.
func prefixOf(b []byte, cands ...string) bool {
	for _, c := range cands {
		if len(b) <= len(c) && string(b) == c[:len(b)] {
			return true
		}
	}
	return false
}

// eqFold compares a token with a lower-case ASCII name. Only letters are
// folded: for token bytes, x|0x20 is a lower-case letter only if x is a
// letter.
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// connectionTokens reads a Connection value. ok is false for anything but
// a list of tokens.
func connectionTokens(v string) (hasClose, hasKeep, ok bool) {
	for v != "" {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		t := v[:i]
		if i < len(v) {
			v = v[i+1:]
		} else {
			v = ""
		}
		// trim OWS
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
		for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t') {
			t = t[:len(t)-1]
		}
		if t == "" {
			continue
		}
		for j := 0; j < len(t); j++ {
			if tokenChar[t[j]] == 0 {
				return false, false, false
			}
		}
		switch {
		case eqFoldString(t, "close"):
			hasClose = true
		case eqFoldString(t, "keep-alive"):
			hasKeep = true
		}
	}
	return hasClose, hasKeep, true
}

func eqFoldString(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// validHost accepts the Host values of ordinary requests: a DNS name or
// IPv4 address with an optional port, or a bracketed IPv6 address. It is
// stricter than net/http (httpguts.ValidHostHeader); anything else is
// handed off, so net/http's checks stay the only judge of odd hosts.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if hostChar[h[i]] == 0 {
			return false
		}
	}
	return true
}

// unescapePath decodes %XX escapes into dst. It fails on a malformed
// escape, as url.PathUnescape does.
func unescapePath(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			dst = append(dst, c)
			continue
		}
		if i+2 >= len(s) {
			return dst, false
		}
		a, b := unhex(s[i+1]), unhex(s[i+2])
		if a < 0 || b < 0 {
			return dst, false
		}
		dst = append(dst, byte(a<<4|b))
		i += 2
	}
	return dst, true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

var tokenChar, uriChar, hostChar [256]byte

func init() {
	for c := '0'; c <= '9'; c++ {
		tokenChar[c], hostChar[c] = 1, 1
	}
	for c := 'a'; c <= 'z'; c++ {
		tokenChar[c], hostChar[c] = 1, 1
		tokenChar[c-32], hostChar[c-32] = 1, 1
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tokenChar[c] = 1
	}
	for _, c := range "-.:[]_" {
		hostChar[c] = 1
	}
	// The request target: visible ASCII but "#" (a fragment never belongs
	// in a request; net/http keeps it in the path). Non-ASCII, spaces and
	// controls hand off.
	for c := '!'; c <= '~'; c++ {
		uriChar[c] = 1
	}
	uriChar['#'] = 0
}
