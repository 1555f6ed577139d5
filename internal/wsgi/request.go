package wsgi

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// Private request headers: set by the Pool, read and removed by the
// adapter. Any a client sends is deleted first (privatePrefix).
const (
	privatePrefix   = "X-Portico-"
	hdrScriptName   = "X-Portico-Script-Name"
	hdrHost         = "X-Portico-Host"
	hdrRemoteAddr   = "X-Portico-Remote-Addr"
	hdrRemotePort   = "X-Portico-Remote-Port"
	hdrServerName   = "X-Portico-Server-Name"
	hdrServerPort   = "X-Portico-Server-Port"
	hdrScheme       = "X-Portico-Scheme"
	hdrProtocol     = "X-Portico-Protocol"
	hdrRequestURI   = "X-Portico-Request-Uri"
	hdrAdapterError = "X-Portico-Error" // response: the app raised; body is the adapter's 500
)

// memBody is how much of a request body is held in memory; beyond it the
// body is spooled to an unlinked temp file in the pool's folder.
const memBody = 256 << 10

// outRequest builds the request to a worker: the client's method, path,
// query and safe headers, plus the private headers the adapter needs.
func (p *Pool) outRequest(ctx context.Context, r *http.Request, body *reqBody) *http.Request {
	u := *r.URL
	u.Scheme, u.Host, u.User, u.Opaque, u.Fragment = "http", "wsgi", nil, "", ""
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	out := (&http.Request{
		Method:     r.Method,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     forwardHeaders(r.Header),
		Host:       "wsgi",
	}).WithContext(ctx)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // not Go's default
	}
	// An empty POST, PUT or PATCH still gets "Content-Length: 0" from the
	// Transport, so the app sees CONTENT_LENGTH=0.
	if body.size > 0 {
		out.ContentLength = body.size
		out.Body = body.reader()
		out.GetBody = func() (io.ReadCloser, error) { return body.reader(), nil }
	}

	h := out.Header
	path := r.URL.Path
	if p.prefix != "" && strings.HasPrefix(path, p.prefix) &&
		(len(path) == len(p.prefix) || path[len(p.prefix)] == '/') {
		h.Set(hdrScriptName, p.prefix)
	}
	if r.Host != "" {
		h.Set(hdrHost, r.Host)
	}
	remoteIP, remotePort := splitHostPort(r.RemoteAddr)
	if a, fromPeer := p.clients.Client(r.RemoteAddr, r.Header["X-Forwarded-For"]); !fromPeer {
		remoteIP, remotePort = a.String(), "" // the client behind trusted proxies
	}
	if remoteIP != "" {
		h.Set(hdrRemoteAddr, remoteIP)
	}
	if remotePort != "" {
		h.Set(hdrRemotePort, remotePort)
	}
	var localIP, localPort string
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		localIP, localPort = splitHostPort(a.String())
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
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
	h.Set(hdrServerName, serverName)
	h.Set(hdrServerPort, localPort)
	h.Set(hdrScheme, scheme)
	h.Set(hdrProtocol, r.Proto)
	if uri := r.RequestURI; uri != "" && printable(uri) {
		h.Set(hdrRequestURI, uri)
	}
	return out
}

// forwardHeaders copies the request headers that may reach the app.
//
// Dropped, with the threat each stops:
//   - Proxy: it would become HTTP_PROXY, which many HTTP clients take as
//     their outbound proxy (httpoxy, CVE-2016-5385).
//   - names with "_" or any byte but letters, digits and "-": X_User and
//     X-User would both become HTTP_X_USER, so a client could shadow a
//     header set by a trusted proxy in front (header aliasing).
//   - X-Portico-*: only portico may set them (client address, scheme...).
//   - hop-by-hop headers, and those the client's Connection names.
//   - Expect: the body has already been read.
func forwardHeaders(in http.Header) http.Header {
	out := make(http.Header, len(in)+9)
	var connTokens []string
	for _, v := range in["Connection"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				connTokens = append(connTokens, http.CanonicalHeaderKey(t))
			}
		}
	}
	for k, vv := range in {
		if !envSafeName(k) {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		switch ck {
		case "Proxy", "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer",
			"Transfer-Encoding", "Upgrade", "Expect", "Content-Length":
			continue
		}
		if strings.HasPrefix(ck, privatePrefix) {
			continue
		}
		if len(connTokens) > 0 && contains(connTokens, ck) {
			continue
		}
		out[ck] = append(out[ck], vv...)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// envSafeName reports whether a header name maps to exactly one HTTP_*
// variable: only letters, digits and "-".
func envSafeName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func responseHopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// reqBody is a request body read in full: in memory, or spooled to an
// unlinked temp file when large. It can be replayed for a retry.
type reqBody struct {
	mem  []byte
	file *os.File
	size int64
}

func (b *reqBody) reader() io.ReadCloser {
	if b.file != nil {
		return io.NopCloser(io.NewSectionReader(b.file, 0, b.size))
	}
	return io.NopCloser(bytes.NewReader(b.mem))
}

func (b *reqBody) Close() {
	if b.file != nil {
		b.file.Close()
	}
}

// readBody reads r's body to the end (bounded by the server's
// http.MaxBytesReader, which yields *http.MaxBytesError beyond the limit).
func readBody(r *http.Request, dir string) (*reqBody, error) {
	b := &reqBody{}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return b, nil
	}
	initial := int64(4 << 10)
	if r.ContentLength > 0 {
		initial = min(r.ContentLength, memBody)
	}
	buf := bytes.NewBuffer(make([]byte, 0, initial))
	n, err := io.Copy(buf, io.LimitReader(r.Body, memBody+1))
	if err != nil {
		return nil, err
	}
	if n <= memBody {
		b.mem, b.size = buf.Bytes(), n
		return b, nil
	}
	f, err := os.CreateTemp(dir, "body-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // the open descriptor keeps it; nothing is left behind
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return nil, err
	}
	m, err := io.Copy(f, r.Body)
	if err != nil {
		f.Close()
		return nil, err
	}
	b.file, b.size = f, n+m
	return b, nil
}
