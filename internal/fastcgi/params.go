package fastcgi

import (
	"net/http"
	"strconv"
	"strings"

	"portico/internal/cgi"
)

// maxParamsBytes bounds the encoded parameters of one request. The
// request header is already bounded by the server (max_header_bytes);
// this only keeps a pathological one from making a huge record stream.
const maxParamsBytes = 2 << 20

// requestMeta is what the parameters of one request are built from, on
// either engine: the request line, the few fields with meta-variables of
// their own, and the connection's endpoints.
type requestMeta struct {
	method, uri, query, proto, host string
	tls                             bool
	ep                              cgi.Endpoints
	// contentLength is -1 when the request has no body.
	contentLength              int64
	contentType, authorization string
}

// appendParams appends the FastCGI parameters of a net/http request: the
// meta-variables (appendMetaParams), one HTTP_* per header field, then
// fastcgi.env. contentLength is -1 when the request has no body.
func (h *Handler) appendParams(b []byte, r *http.Request, t target, contentLength int64) []byte {
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	m := requestMeta{
		method:        r.Method,
		uri:           uri,
		query:         r.URL.RawQuery,
		proto:         r.Proto,
		host:          r.Host,
		tls:           r.TLS != nil,
		ep:            cgi.EndpointsOf(r, h.clients),
		contentLength: contentLength,
		contentType:   r.Header.Get("Content-Type"),
		authorization: r.Header.Get("Authorization"),
	}
	b = h.appendMetaParams(b, &m, t)
	for name, values := range r.Header {
		key, ok := cgi.HeaderEnvName(name)
		if !ok {
			continue
		}
		sep := ", "
		if key == "HTTP_COOKIE" {
			sep = "; "
		}
		b = appendParam(b, key, strings.Join(values, sep))
	}
	return h.appendEnvParams(b)
}

// appendMetaParams appends the meta-variables of RFC 3875 section 4.1
// with the rules of the CGI handler, the ones php-fpm needs
// (SCRIPT_FILENAME, DOCUMENT_ROOT, REQUEST_URI, REDIRECT_STATUS) and
// HTTP_HOST; the other HTTP_* follow (through cgi.HeaderEnvName: never
// HTTP_PROXY, never a header with "_" in its name).
func (h *Handler) appendMetaParams(b []byte, m *requestMeta, t target) []byte {
	scheme := "http"
	if m.tls {
		scheme = "https"
		b = appendParam(b, "HTTPS", "on")
	}
	b = appendParam(b, "GATEWAY_INTERFACE", "CGI/1.1")
	b = appendParam(b, "SERVER_SOFTWARE", "portico")
	b = appendParam(b, "REDIRECT_STATUS", "200")
	b = appendParam(b, "DOCUMENT_ROOT", h.root)
	b = appendParam(b, "REQUEST_METHOD", m.method)
	b = appendParam(b, "REQUEST_URI", m.uri)
	b = appendParam2(b, "DOCUMENT_URI", t.name, t.pathInfo)
	b = appendParam(b, "REQUEST_SCHEME", scheme)
	b = appendParam(b, "QUERY_STRING", m.query)
	b = appendParam(b, "SCRIPT_NAME", t.name)
	b = appendParam3(b, "SCRIPT_FILENAME", h.root, "/", t.rel)
	b = appendParam(b, "PATH_INFO", t.pathInfo)
	if t.pathInfo != "" {
		b = appendParam2(b, "PATH_TRANSLATED", h.root, t.pathInfo)
	}
	b = appendParam(b, "SERVER_NAME", m.ep.ServerName)
	b = appendParam(b, "SERVER_PORT", m.ep.ServerPort)
	b = appendParam(b, "SERVER_PROTOCOL", m.proto)
	b = appendParam(b, "REMOTE_ADDR", m.ep.RemoteAddr)
	// No DNS lookups: RFC 3875 section 4.1.9 says to give REMOTE_ADDR.
	b = appendParam(b, "REMOTE_HOST", m.ep.RemoteAddr)
	if m.ep.ServerAddr != "" {
		b = appendParam(b, "SERVER_ADDR", m.ep.ServerAddr)
	}
	if m.ep.RemotePort != "" {
		b = appendParam(b, "REMOTE_PORT", m.ep.RemotePort)
	}
	if m.contentLength >= 0 {
		var num [20]byte
		b = appendParamBytes(b, "CONTENT_LENGTH", strconv.AppendInt(num[:0], m.contentLength, 10))
	}
	if m.contentType != "" {
		b = appendParam(b, "CONTENT_TYPE", m.contentType)
	}
	// portico authenticates no one, so REMOTE_USER is never set; AUTH_TYPE
	// names the scheme the client used, for apps that check credentials.
	if m.authorization != "" {
		if s, _, _ := strings.Cut(m.authorization, " "); s != "" && isToken(s) {
			b = appendParam(b, "AUTH_TYPE", s)
		}
	}
	if m.host != "" {
		b = appendParam(b, "HTTP_HOST", m.host)
	}
	return b
}

// appendEnvParams appends fastcgi.env, last.
func (h *Handler) appendEnvParams(b []byte) []byte {
	for _, kv := range h.env {
		b = appendParam(b, kv[0], kv[1])
	}
	return b
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}
