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

// appendParams appends the FastCGI parameters of one request: the
// meta-variables of RFC 3875 section 4.1 with the rules of the CGI
// handler (HTTP_* through cgi.HeaderEnvName: never HTTP_PROXY, never a
// header with "_" in its name), the ones php-fpm needs (SCRIPT_FILENAME,
// DOCUMENT_ROOT, REQUEST_URI, REDIRECT_STATUS), then fastcgi.env.
// contentLength is -1 when the request has no body.
func (h *Handler) appendParams(b []byte, r *http.Request, t target, contentLength int64) []byte {
	ep := cgi.EndpointsOf(r, h.clients)
	remoteIP, remotePort := ep.RemoteAddr, ep.RemotePort
	localIP, localPort, serverName := ep.ServerAddr, ep.ServerPort, ep.ServerName
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
		b = appendParam(b, "HTTPS", "on")
	}
	b = appendParam(b, "GATEWAY_INTERFACE", "CGI/1.1")
	b = appendParam(b, "SERVER_SOFTWARE", "portico")
	b = appendParam(b, "REDIRECT_STATUS", "200")
	b = appendParam(b, "DOCUMENT_ROOT", h.root)
	b = appendParam(b, "REQUEST_METHOD", r.Method)
	b = appendParam(b, "REQUEST_URI", uri)
	b = appendParam(b, "DOCUMENT_URI", t.name+t.pathInfo)
	b = appendParam(b, "REQUEST_SCHEME", scheme)
	b = appendParam(b, "QUERY_STRING", r.URL.RawQuery)
	b = appendParam(b, "SCRIPT_NAME", t.name)
	b = appendParam(b, "SCRIPT_FILENAME", h.root+"/"+t.rel)
	b = appendParam(b, "PATH_INFO", t.pathInfo)
	if t.pathInfo != "" {
		b = appendParam(b, "PATH_TRANSLATED", h.root+t.pathInfo)
	}
	b = appendParam(b, "SERVER_NAME", serverName)
	b = appendParam(b, "SERVER_PORT", localPort)
	b = appendParam(b, "SERVER_PROTOCOL", r.Proto)
	b = appendParam(b, "REMOTE_ADDR", remoteIP)
	// No DNS lookups: RFC 3875 section 4.1.9 says to give REMOTE_ADDR.
	b = appendParam(b, "REMOTE_HOST", remoteIP)
	if localIP != "" {
		b = appendParam(b, "SERVER_ADDR", localIP)
	}
	if remotePort != "" {
		b = appendParam(b, "REMOTE_PORT", remotePort)
	}
	if contentLength >= 0 {
		b = appendParam(b, "CONTENT_LENGTH", strconv.FormatInt(contentLength, 10))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		b = appendParam(b, "CONTENT_TYPE", ct)
	}
	// portico authenticates no one, so REMOTE_USER is never set; AUTH_TYPE
	// names the scheme the client used, for apps that check credentials.
	if auth := r.Header.Get("Authorization"); auth != "" {
		if s, _, _ := strings.Cut(auth, " "); s != "" && isToken(s) {
			b = appendParam(b, "AUTH_TYPE", s)
		}
	}
	if r.Host != "" {
		b = appendParam(b, "HTTP_HOST", r.Host)
	}
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
