package fastcgi

import (
	"bytes"
	"net"
	"net/netip"
	"unsafe"

	"portico/internal/cgi"
	"portico/internal/fastpath"
)

// appendFastParams is appendParams for a request of the fast path (a GET
// or HEAD without a body): the same parameters from the fast path's
// request and its header lines as received. Repeated fields are joined
// as net/http's header map joins them (", ", "; " for Cookie), Host is
// HTTP_HOST alone, and the server's X-Request-ID replaces the client's,
// as the server sets it on net/http's path.
func (h *Handler) appendFastParams(b []byte, st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, t target) []byte {
	raw := w.RawHeader()
	var xff []string
	if h.clients.HasTrusted() {
		xff = w.RequestValues("X-Forwarded-For", st.xff[:0])
	}
	st.local = appendAddr(st.local[:0], w.LocalAddr())
	m := requestMeta{
		method:        req.Method,
		uri:           req.URI,
		query:         req.Query,
		proto:         req.Proto,
		host:          req.Host,
		ep:            cgi.EndpointsFrom(req.RemoteAddr, xff, bstr(st.local), req.Host, false, h.clients),
		contentLength: -1,
	}
	// Content-Length (only "0" reaches the fast path), Content-Type and
	// Authorization, from the lines as the handler may see them (a gate
	// may hide Authorization).
	forEachField(raw, func(name, value []byte) {
		switch {
		case eqFold(name, "content-length"):
			m.contentLength = 0
		case eqFold(name, "content-type") && m.contentType == "":
			m.contentType = bstr(value)
		case eqFold(name, "authorization") && m.authorization == "":
			m.authorization = bstr(value)
		}
	})
	b = h.appendMetaParams(b, &m, t)
	b = appendHeaderParams(b, raw, req.RequestID)
	if req.RequestID != "" {
		b = appendParam(b, "HTTP_X_REQUEST_ID", req.RequestID)
	}
	return h.appendEnvParams(b)
}

// appendHeaderParams appends one HTTP_* parameter per field name of raw
// (header lines "Name: value\r\n"), the values of a repeated name joined,
// with cgi.HeaderEnvName's rules; Host is left out (HTTP_HOST is the
// request's Host), and so is X-Request-ID when the server assigned one.
func appendHeaderParams(b []byte, raw []byte, requestID string) []byte {
	pragmaNoCache, cacheControl := false, false
	for off := 0; off < len(raw); {
		line, rest := cutLine(raw[off:])
		before := raw[:off]
		off = len(raw) - len(rest)
		name, value, ok := splitField(line)
		if !ok || !envNameOK(name) || requestID != "" && eqFold(name, "x-request-id") {
			continue
		}
		if seenBefore(before, name) {
			continue // joined with the first one
		}
		switch {
		case eqFold(name, "pragma"):
			pragmaNoCache = string(value) == "no-cache"
		case eqFold(name, "cache-control"):
			cacheControl = true
		}
		sep := ", "
		if eqFold(name, "cookie") {
			sep = "; "
		}
		// The joined length first: the pair's length prefix comes before.
		total := len(value)
		forEachField(rest, func(n, v []byte) {
			if len(n) == len(name) && eqFoldBytes(n, name) {
				total += len(sep) + len(v)
			}
		})
		b = appendParamLen(b, 5+len(name))
		b = appendParamLen(b, total)
		b = append(b, "HTTP_"...)
		for _, c := range name {
			switch {
			case c >= 'a' && c <= 'z':
				c -= 'a' - 'A'
			case c == '-':
				c = '_'
			}
			b = append(b, c)
		}
		b = append(b, value...)
		forEachField(rest, func(n, v []byte) {
			if len(n) == len(name) && eqFoldBytes(n, name) {
				b = append(b, sep...)
				b = append(b, v...)
			}
		})
	}
	if pragmaNoCache && !cacheControl {
		// As net/http's server does (RFC 9111 section 5.4).
		b = appendParam(b, "HTTP_CACHE_CONTROL", "no-cache")
	}
	return b
}

// envNameOK is cgi.HeaderEnvName's test without building the name: only
// letters, digits and "-" (no "_": header aliasing), and never Proxy
// (httpoxy), Content-Type, Content-Length or Host.
func envNameOK(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return !eqFold(name, "proxy") && !eqFold(name, "content-type") &&
		!eqFold(name, "content-length") && !eqFold(name, "host")
}

// seenBefore reports whether the lines of raw hold a field named name.
func seenBefore(raw, name []byte) bool {
	found := false
	forEachField(raw, func(n, _ []byte) {
		if !found && len(n) == len(name) && eqFoldBytes(n, name) {
			found = true
		}
	})
	return found
}

// forEachField calls f with the name and value (without surrounding
// whitespace) of every header line of raw.
func forEachField(raw []byte, f func(name, value []byte)) {
	for len(raw) > 0 {
		var line []byte
		line, raw = cutLine(raw)
		if name, value, ok := splitField(line); ok {
			f(name, value)
		}
	}
}

// cutLine returns the first line of raw (without its CRLF) and the rest.
func cutLine(raw []byte) (line, rest []byte) {
	i := bytes.IndexByte(raw, '\n')
	if i < 0 {
		return raw, nil
	}
	line, rest = raw[:i], raw[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// splitField splits "Name: value" (the engine checked the syntax).
func splitField(line []byte) (name, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, false
	}
	return line[:i], bytes.Trim(line[i+1:], " \t"), true
}

// eqFold compares a field name with a lower-case ASCII name.
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// eqFoldBytes compares two ASCII names of the same length, letter case
// ignored.
func eqFoldBytes(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// appendAddr appends a local address as its String method would write
// it, without allocating for TCP addresses.
func appendAddr(b []byte, a net.Addr) []byte {
	switch a := a.(type) {
	case nil:
		return b
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return append(b, a.String()...)
		}
		ip = ip.Unmap().WithZone(a.Zone)
		return netip.AddrPortFrom(ip, uint16(a.Port)).AppendTo(b)
	}
	return append(b, a.String()...)
}

// bstr returns b as a string without copying: valid while b is unchanged
// (the request's parameters are built before the buffers are reused).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
