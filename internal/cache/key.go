package cache

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"portico/internal/fastpath"
	"slices"
	"strings"
)

func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func (h *Handler) primaryKey(r *http.Request) string {
	return h.keyFor(schemeOf(r), r.Host, r.URL.EscapedPath(), r.URL.RawQuery)
}

func variantKey(primary, id, secondary string) string {
	var kb [keyBuf]byte
	return string(append(appendVariantPrefix(kb[:0], primary, id), secondary...))
}

// appendVariantPrefix appends what precedes the secondary key in a
// variant's key: primary "\x00" id "\x00" (id is the marker's).
func appendVariantPrefix[T string | []byte](b []byte, primary T, id string) []byte {
	b = append(b, primary...)
	b = append(b, 0)
	b = append(b, id...)
	return append(b, 0)
}

// varyNames parses Vary into sorted canonical names; star reports "*".
func varyNames(h http.Header) (names []string, star bool) {
	for _, line := range h["Vary"] {
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f == "*" {
				return nil, true
			}
			f = http.CanonicalHeaderKey(f)
			if !slices.Contains(names, f) {
				names = append(names, f)
			}
		}
	}
	slices.Sort(names)
	return names, false
}

func newMarkerID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// keyBuf sizes the stack buffers keys are built in; longer keys spill to
// the heap.
const keyBuf = 512

// keyFor builds "METHOD scheme://host/path?query" with the parts the
// config leaves out empty. GET and HEAD share the key "GET".
func (h *Handler) keyFor(scheme, host, path, query string) string {
	var kb [keyBuf]byte
	return string(h.appendKey(kb[:0], scheme, host, path, query))
}

// appendKey appends the primary key keyFor builds: the one key builder of
// both engines (the fast path appends into a stack buffer and looks the
// bytes up without a string).
func (h *Handler) appendKey(b []byte, scheme, host, path, query string) []byte {
	kp := h.key
	if kp.Method {
		b = append(b, "GET"...)
	}
	b = append(b, ' ')
	if kp.Scheme {
		b = append(b, scheme...)
	}
	b = append(b, "://"...)
	if kp.Host {
		b = appendNormHost(b, host, scheme)
	}
	if kp.Path {
		b = append(b, path...)
	}
	b = append(b, '?')
	if kp.Query {
		b = append(b, query...)
	}
	return b
}

// normHost lower-cases a host and drops the scheme's default port, so
// "Example.TEST:80" and "example.test" share entries.
func normHost(host, scheme string) string {
	var kb [keyBuf]byte
	return string(appendNormHost(kb[:0], host, scheme))
}

// appendNormHost appends normHost(host, scheme) without allocating.
func appendNormHost(b []byte, host, scheme string) []byte {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		port := host[i+1:]
		if port == "" || (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			host = host[:i]
		}
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// secondaryKey is the Vary part of a key for a net/http request.
func secondaryKey(h http.Header, names []string) string {
	var kb [keyBuf]byte
	return string(appendSecondaryKey(kb[:0], names, h, nil))
}

// appendSecondaryKey appends the Vary part of a key: for each name,
// "name=" and the request's values of that field in the order received,
// each trimmed, joined with ",", blanks around commas removed, and
// Accept-Language lower-cased (language tags are case-insensitive), then
// "\n" (RFC 9111 section 4.1 allows such normalisation: "en, de" and
// "eN,De" select the same variant; order is kept, it may mean a
// preference). The values come from hdr (net/http) or, when hdr is nil,
// from raw, the request's raw header lines (the fast path).
func appendSecondaryKey(b []byte, names []string, hdr http.Header, raw []byte) []byte {
	for _, n := range names {
		b = append(b, n...)
		b = append(b, '=')
		start := len(b)
		if hdr != nil {
			for i, v := range hdr[n] {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, strings.TrimSpace(v)...)
			}
		} else {
			b = appendRawValues(b, raw, n)
		}
		b = normaliseVaryValue(b, start, n == "Accept-Language")
		b = append(b, '\n')
	}
	return b
}

// normaliseVaryValue compacts b[start:] in place: the blanks next to a
// comma removed, letters lower-cased when lower.
func normaliseVaryValue(b []byte, start int, lower bool) []byte {
	w := start
	for i := start; i < len(b); i++ {
		c := b[i]
		if c == ' ' || c == '\t' {
			// Drop a blank run that ends at a comma or follows one.
			j := i
			for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
				j++
			}
			if (w > start && b[w-1] == ',') || j == len(b) || b[j] == ',' {
				i = j - 1
				continue
			}
		}
		if lower && c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[w] = c
		w++
	}
	return b[:w]
}

// appendRawValues appends the values of field n in raw header lines as
// net/http would hold them (textproto trims blanks) trimmed as
// appendSecondaryKey trims them, joined with ",".
func appendRawValues(b, raw []byte, n string) []byte {
	first := true
	for len(raw) > 0 {
		j := 0
		for j < len(raw) && raw[j] != '\n' {
			j++
		}
		line := raw[:j]
		if j < len(raw) {
			raw = raw[j+1:]
		} else {
			raw = nil
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) <= len(n) || line[len(n)] != ':' || !fastpath.EqualFold(line[:len(n)], n) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, bytes.TrimSpace(line[len(n)+1:])...)
	}
	return b
}
