package wsgi

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
)

// privatePrefix starts the names of portico's own headers: any a client
// sends is dropped, and any the app sets is not passed on.
const privatePrefix = "X-Portico-"

// memBody is how much of a request body is held in memory; beyond it the
// body is spooled to an unlinked temp file in the pool's folder.
const memBody = 256 << 10

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
	out := make(http.Header, len(in))
	forEachForwarded(in, func(k string, vv []string) { out[k] = append(out[k], vv...) })
	return out
}

// forEachForwarded calls fn with the canonical name and the values of each
// request header that may reach the app (the rules of forwardHeaders). A
// name may come more than once when the client's map holds it in two
// spellings.
func forEachForwarded(in http.Header, fn func(k string, vv []string)) {
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
		fn(ck, vv)
	}
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
