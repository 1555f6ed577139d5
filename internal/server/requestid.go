package server

import (
	"bytes"
	"math/rand/v2"
	"net/http"

	"portico/internal/config"
)

// Request IDs (server.request_id): each request gets an X-Request-ID,
// generated or, in "pass" mode, taken from the client when it is a sane
// token. The id is set on the request (so proxy, CGI and WSGI pass it
// on), on the response, and in the access log. Both engines call
// requestID, so they assign ids the same way.

// maxRequestIDLen bounds a client's id: longer ones are replaced.
const maxRequestIDLen = 128

// requestID returns the id of a request whose client sent incoming
// ("" if none), for mode ("generate" or "pass").
func requestID(mode, incoming string) string {
	if mode == config.RequestIDPass && validRequestID(incoming) {
		return incoming
	}
	return newRequestID()
}

// validRequestID accepts 1-128 characters of letters, digits and "-_.:":
// an id from a client goes into logs and upstream headers, so nothing
// that could forge a log line or a header.
func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// newRequestID returns 32 random hex digits (128 bits, from the runtime's
// per-thread ChaCha8 generator: no lock, no system call).
func newRequestID() string {
	var b [32]byte
	const hex = "0123456789abcdef"
	for half := 0; half < 2; half++ {
		v := rand.Uint64()
		for i := 0; i < 16; i++ {
			b[half*16+i] = hex[v&15]
			v >>= 4
		}
	}
	return string(b[:])
}

// setRequestID assigns r its id: on the request header (what goes
// upstream) and on the response (the recorder keeps it there).
func setRequestID(mode string, r *http.Request, rec *recorder) {
	id := requestID(mode, r.Header.Get("X-Request-Id"))
	r.Header["X-Request-Id"] = []string{id}
	rec.Header()["X-Request-Id"] = []string{id}
	rec.requestID = id
}

// keepRequestID leaves the response with the server's id only: a proxy
// adds the upstream's copy of the field to the one set before the
// handler ran, and a relayed 1xx clears the map.
func (rec *recorder) keepRequestID() {
	if rec.requestID == "" {
		return
	}
	h := rec.w.Header()
	if v := h["X-Request-Id"]; len(v) > 1 || rec.interim && len(v) == 0 {
		h["X-Request-Id"] = []string{rec.requestID}
	}
}

// rawHeaderValue finds the value of field name in raw HTTP/1.1 header
// lines (the fast path's RawHeader), "" if absent or repeated.
func rawHeaderValue(raw []byte, name string) string {
	found := ""
	n := 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && bytes.EqualFold(line[:len(name)], []byte(name)) {
			n++
			found = string(bytes.TrimSpace(line[len(name)+1:]))
		}
	}
	if n != 1 {
		return ""
	}
	return found
}
