package cgi

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
)

// defaultPath is the scripts' PATH when portico itself has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// maxEnvString is Linux's limit on one environment string (MAX_ARG_STRLEN,
// 32 pages): execve fails with E2BIG beyond it.
const maxEnvString = 128 << 10

// reservedEnv are the variables portico sets per request; cfg.Env may not
// set them (it could otherwise fake the client's address or the script
// path). PATH and DOCUMENT_ROOT may be set.
var reservedEnv = map[string]bool{
	"AUTH_TYPE": true, "CONTENT_LENGTH": true, "CONTENT_TYPE": true,
	"GATEWAY_INTERFACE": true, "PATH_INFO": true, "PATH_TRANSLATED": true,
	"QUERY_STRING": true, "REMOTE_ADDR": true, "REMOTE_HOST": true,
	"REMOTE_IDENT": true, "REMOTE_USER": true, "REMOTE_PORT": true,
	"REQUEST_METHOD": true, "SCRIPT_NAME": true, "SERVER_NAME": true,
	"SERVER_PORT": true, "SERVER_PROTOCOL": true, "SERVER_SOFTWARE": true,
	"SERVER_ADDR": true, "SCRIPT_FILENAME": true, "REQUEST_URI": true,
	"REQUEST_SCHEME": true, "HTTPS": true, "REDIRECT_STATUS": true,
	tokenEnv: true,
}

// baseEnv builds, once in New, the part of every script's environment that
// does not depend on the request. It is an allow-list: nothing of portico's
// own environment but PATH goes in (RFC 3875 section 4.1 plus cfg.Env).
func baseEnv(cfgEnv map[string]string, docRoot string) ([]string, string, error) {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := []string{"GATEWAY_INTERFACE=CGI/1.1", "SERVER_SOFTWARE=portico", "REDIRECT_STATUS=200"}
	keys := make([]string, 0, len(cfgEnv))
	for k := range cfgEnv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := cfgEnv[k]
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, "", fmt.Errorf("cgi env: invalid variable %q", k)
		}
		if reservedEnv[k] || strings.HasPrefix(k, "HTTP_") {
			return nil, "", fmt.Errorf("cgi env: %s is set by portico for each request", k)
		}
		switch k {
		case "PATH":
			path = v
			continue
		case "DOCUMENT_ROOT":
			docRoot = v
			continue
		}
		env = append(env, k+"="+v)
	}
	env = append(env, "PATH="+path, "DOCUMENT_ROOT="+docRoot)
	return env, path, nil
}

// env builds the environment of one script run (RFC 3875 section 4.1).
// contentLength is -1 when the request has no body.
func (h *Handler) env(r *http.Request, s *script, contentLength int64) []string {
	env := make([]string, len(h.baseEnv), len(h.baseEnv)+24+len(r.Header))
	copy(env, h.baseEnv)

	ep := EndpointsOf(r, h.clients)
	remoteIP, remotePort := ep.RemoteAddr, ep.RemotePort
	localIP, localPort, serverName := ep.ServerAddr, ep.ServerPort, ep.ServerName
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
		env = append(env, "HTTPS=on")
	}
	env = append(env,
		"REQUEST_METHOD="+r.Method,
		"REQUEST_URI="+uri,
		"REQUEST_SCHEME="+scheme,
		"QUERY_STRING="+r.URL.RawQuery,
		"SCRIPT_NAME="+s.name,
		"SCRIPT_FILENAME="+s.file,
		"PATH_INFO="+s.pathInfo,
		"SERVER_NAME="+serverName,
		"SERVER_PORT="+localPort,
		"SERVER_PROTOCOL="+r.Proto,
		"REMOTE_ADDR="+remoteIP,
		// No DNS lookups (Apache's HostnameLookups Off): RFC 3875 section
		// 4.1.9 says to substitute REMOTE_ADDR.
		"REMOTE_HOST="+remoteIP,
	)
	if localIP != "" {
		env = append(env, "SERVER_ADDR="+localIP)
	}
	if remotePort != "" {
		env = append(env, "REMOTE_PORT="+remotePort)
	}
	if s.pathInfo != "" {
		env = append(env, "PATH_TRANSLATED="+h.docRoot+s.pathInfo)
	}
	if contentLength >= 0 {
		env = append(env, "CONTENT_LENGTH="+strconv.FormatInt(contentLength, 10))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		env = append(env, "CONTENT_TYPE="+ct)
	}
	// portico authenticates no one, so REMOTE_USER is never set: a value
	// would only be what the client claims. AUTH_TYPE names the scheme the
	// client used, for scripts that check credentials themselves.
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, _, _ := strings.Cut(auth, " ")
		if scheme != "" && isToken(scheme) {
			env = append(env, "AUTH_TYPE="+scheme)
		}
	}
	if r.Host != "" {
		env = append(env, "HTTP_HOST="+r.Host)
	}
	for name, values := range r.Header {
		key, ok := headerEnvName(name)
		if !ok {
			continue
		}
		sep := ", "
		if key == "HTTP_COOKIE" {
			sep = "; "
		}
		v := key + "=" + strings.Join(values, sep)
		if len(v) >= maxEnvString {
			continue // execve would refuse the whole environment
		}
		env = append(env, v)
	}
	return env
}

// headerEnvName maps a request header name to its HTTP_* meta-variable
// (RFC 3875 section 4.1.18), or reports false for headers that must not
// become one:
//
//   - "Proxy": HTTP_PROXY steers many HTTP clients' outbound requests
//     (httpoxy, CVE-2016-5385).
//   - names with "_" or any byte but letters, digits and "-": both
//     "X-User" and "X_User" would map to HTTP_X_USER, so a client could
//     shadow a header set by a trusted proxy (header aliasing); nginx and
//     gunicorn drop them too.
//   - Content-Type and Content-Length, given as CONTENT_TYPE and
//     CONTENT_LENGTH; Host, given from r.Host.
func headerEnvName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	b := make([]byte, 5+len(name))
	copy(b, "HTTP_")
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-':
			c = '_'
		default:
			return "", false
		}
		b[5+i] = c
	}
	key := string(b)
	switch key {
	case "HTTP_PROXY", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_HOST":
		return "", false
	}
	return key, true
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// splitHostPort splits "host:port" (IPv6 in brackets) without failing on a
// bare host.
func splitHostPort(addr string) (string, string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return host, port
}
