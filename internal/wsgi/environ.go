package wsgi

import (
	"encoding/binary"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// appendRequest appends the request frame for r (id, body size) to b: the
// PEP 3333 environ's string items, built here rather than by the adapter
// (adapter.py's opening comment has the layout). Only what forwardHeaders
// lets through becomes HTTP_*; what Python cannot know (the client's
// address, the port it connected to, the scheme, the route prefix) is
// portico's own, never the client's.
func (p *Pool) appendRequest(b []byte, r *http.Request, id uint64, bodySize int64) []byte {
	start := len(b)
	b = append(b, frameRequest, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, uint64(bodySize))

	// PATH_INFO as raw bytes (latin-1 to the adapter): it alone may hold
	// a NUL (%00), so it goes with its length, before the NUL-separated
	// items.
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	script := ""
	if p.prefix != "" && strings.HasPrefix(path, p.prefix) &&
		(len(path) == len(p.prefix) || path[len(p.prefix)] == '/') {
		script, path = p.prefix, path[len(p.prefix):]
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(path)))
	b = append(b, path...)

	add := func(k, v string) {
		if strings.IndexByte(v, 0) >= 0 {
			return // cannot be framed; no header value may hold one anyway
		}
		b = append(b, k...)
		b = append(b, 0)
		b = append(b, v...)
		b = append(b, 0)
	}
	add("REQUEST_METHOD", r.Method)
	add("SCRIPT_NAME", script)
	add("QUERY_STRING", r.URL.RawQuery)

	remoteIP, remotePort := splitHostPort(r.RemoteAddr)
	if a, fromPeer := p.clients.Client(r.RemoteAddr, r.Header["X-Forwarded-For"]); !fromPeer {
		remoteIP, remotePort = a.String(), "" // the client behind trusted proxies
	}
	add("REMOTE_ADDR", remoteIP)
	if remotePort != "" {
		add("REMOTE_PORT", remotePort)
	}
	var localIP, localPort string
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		localIP, localPort = splitHostPort(a.String())
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
		add("HTTPS", "on")
	}
	if localPort == "" {
		// Never the port named in Host: the client chose that.
		localPort = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	serverName, _ := splitHostPort(r.Host)
	if serverName == "" {
		serverName = localIP
	}
	if serverName == "" {
		serverName = "localhost"
	}
	add("SERVER_NAME", serverName)
	add("SERVER_PORT", localPort)
	add("SERVER_PROTOCOL", r.Proto)
	add("wsgi.url_scheme", scheme)
	if r.Host != "" {
		add("HTTP_HOST", r.Host)
	}
	if uri := r.RequestURI; uri != "" && printable(uri) {
		add("REQUEST_URI", uri)
		add("RAW_URI", uri)
	}
	// An empty POST, PUT or PATCH still has CONTENT_LENGTH=0 (what an
	// HTTP client sends for them).
	if bodySize > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		add("CONTENT_LENGTH", strconv.FormatInt(bodySize, 10))
	}

	hdr := r.Header
	for k := range hdr {
		if http.CanonicalHeaderKey(k) != k {
			// Rare (a hand-made header map): two spellings of one name
			// must make one HTTP_* item.
			hdr = forwardHeaders(hdr)
			break
		}
	}
	forEachForwarded(hdr, func(k string, vv []string) {
		switch {
		case len(vv) == 0:
		case k == "Content-Type":
			add("CONTENT_TYPE", vv[0])
		case k == "Cookie":
			add(envName(k), strings.Join(vv, "; "))
		default:
			add(envName(k), strings.Join(vv, ", "))
		}
	})
	return finishRequestFrame(b, start)
}

// finishRequestFrame drops the last NUL and sets the frame's length.
func finishRequestFrame(b []byte, start int) []byte {
	if b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-frameHeaderLen))
	return b
}

// envName is the environ key of a request header: HTTP_ and the name in
// upper case with "-" as "_" (forwardHeaders lets only letters, digits
// and "-" through).
func envName(k string) string {
	n := make([]byte, 0, 5+len(k))
	n = append(n, "HTTP_"...)
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '-':
			c = '_'
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		n = append(n, c)
	}
	return string(n)
}
