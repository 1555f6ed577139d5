package static

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"portico/internal/config"
)

func etagOf(size int64, enc string) string {
	s := `"` + strconv.FormatInt(size, 16) + "-" + strconv.FormatInt(fixedTime.UnixNano(), 16)
	if enc != "" {
		s += "-" + enc
	}
	return s + `"`
}

var lastMod = fixedTime.Format(http.TimeFormat)

// servers runs h over HTTP/1.1 and HTTP/2 and returns a client for each
// that neither follows redirects nor asks for gzip by itself.
func servers(t *testing.T, h http.Handler) map[string]func(*http.Request) *http.Response {
	t.Helper()
	out := map[string]func(*http.Request) *http.Response{}
	h1 := httptest.NewServer(h)
	t.Cleanup(h1.Close)
	h2 := httptest.NewUnstartedServer(h)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	for name, ts := range map[string]*httptest.Server{"h1": h1, "h2": h2} {
		c := ts.Client()
		tr := c.Transport.(*http.Transport)
		tr.DisableCompression = true
		if name == "h2" {
			tr.ForceAttemptHTTP2 = true
		}
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		u, _ := url.Parse(ts.URL)
		out[name] = func(r *http.Request) *http.Response {
			t.Helper()
			r.URL.Scheme, r.URL.Host = u.Scheme, u.Host
			r.Host = u.Host
			resp, err := c.Do(r)
			if err != nil {
				t.Fatalf("%s %s: %v", r.Method, r.URL.Opaque, err)
			}
			if name == "h2" && resp.ProtoMajor != 2 {
				t.Fatalf("want HTTP/2, got %s", resp.Proto)
			}
			return resp
		}
	}
	return out
}

type hcase struct {
	name   string
	method string
	path   string   // request-target, sent as is
	hdr    []string // request header pairs
	status int
	body   string            // checked when not ""
	want   map[string]string // response headers; "" means absent
}

func runCases(t *testing.T, h http.Handler, cases []hcase) {
	t.Helper()
	for proto, send := range servers(t, h) {
		for _, c := range cases {
			t.Run(proto+"/"+c.name, func(t *testing.T) {
				method := c.method
				if method == "" {
					method = http.MethodGet
				}
				req := &http.Request{Method: method, URL: newOpaque(c.path), Header: http.Header{}}
				for i := 0; i+1 < len(c.hdr); i += 2 {
					req.Header.Add(c.hdr[i], c.hdr[i+1])
				}
				resp := send(req)
				got := body(t, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status {
					t.Fatalf("%s %s: got status %d, want %d (body %q)", method, c.path, resp.StatusCode, c.status, got)
				}
				if c.body != "" && got != c.body {
					t.Errorf("body: got %q, want %q", got, c.body)
				}
				for k, v := range c.want {
					if g := resp.Header.Get(k); g != v {
						t.Errorf("header %s: got %q, want %q", k, g, v)
					}
				}
			})
		}
	}
}

func TestServe(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	ok1k := strings.Repeat("x", 1023) + "\n"
	cases := []hcase{
		{name: "get 1k", path: "/1k.txt", status: 200, body: ok1k, want: map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "Content-Length": "1024", "Accept-Ranges": "bytes",
			"ETag": etagOf(1024, ""), "Last-Modified": lastMod, "Vary": "", "Content-Encoding": "", "Cache-Control": ""}},
		{name: "head", method: "HEAD", path: "/1k.txt", status: 200, want: map[string]string{"Content-Length": "1024", "ETag": etagOf(1024, "")}},
		{name: "post 405", method: "POST", path: "/1k.txt", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "delete 405", method: "DELETE", path: "/missing", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "options 204", method: "OPTIONS", path: "/1k.txt", status: 204, want: map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "css", path: "/style.css", status: 200, want: map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{name: "js", path: "/app.js", status: 200, body: "console.log('plain')\n", want: map[string]string{"Content-Type": "text/javascript; charset=utf-8"}},
		{name: "wasm", path: "/data.wasm", status: 200, want: map[string]string{"Content-Type": "application/wasm"}},
		{name: "sniff html", path: "/noext", status: 200, want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "sniff binary", path: "/binary", status: 200, want: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "empty file", path: "/empty.txt", status: 200, body: "", want: map[string]string{"Content-Length": "0"}},
		{name: "space name", path: "/a%20b.txt", status: 200, body: "space"},
		{name: "markup name", path: "/%3Cx%3E&.txt", status: 200, body: "markup"},
		{name: "utf8 name", path: "/%C3%BCn%C3%AF.txt", status: 200, body: "utf8 name"},
		{name: "big from disk", path: "/big.bin", status: 200, body: string(bigContent()), want: map[string]string{"Content-Length": strconv.Itoa(bigSize)}},
		{name: "missing", path: "/missing.txt", status: 404},
		{name: "missing html", path: "/missing", hdr: []string{"Accept", "text/html"}, status: 404, want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "root index", path: "/", status: 200, body: "<h1>home</h1>\n", want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "dir redirect", path: "/sub", status: 301, want: map[string]string{"Location": "/sub/"}},
		{name: "dir redirect query", path: "/sub?a=1&b=2", status: 301, want: map[string]string{"Location": "/sub/?a=1&b=2"}},
		{name: "dir redirect escaped", path: "/link-sub", status: 301, want: map[string]string{"Location": "/link-sub/"}},
		{name: "dir index", path: "/sub/", status: 200, body: "<p>sub</p>\n"},
		{name: "dir index file", path: "/sub/index.html", status: 200, body: "<p>sub</p>\n"},
		{name: "dir no index", path: "/empty/", status: 404},
		{name: "file with slash", path: "/1k.txt/", status: 404},
		{name: "double slash merged", path: "/sub//file.txt", status: 200, body: "in sub"},
		{name: "cache-control absent", path: "/style.css", status: 200, want: map[string]string{"Cache-Control": ""}},

		// Dotfiles.
		{name: "dotfile", path: "/.env", status: 404},
		{name: "dot dir", path: "/.git/config", status: 404},
		{name: "nested dotfile", path: "/docs/.hidden", status: 404},
		{name: "encoded dotfile", path: "/%2eenv", status: 404},
		{name: "dot dir file", path: "/.well/known.txt", status: 404},

		// Hidden (cgi) folders and script sources.
		{name: "hidden script", path: "/cgi-bin/script.py", status: 404},
		{name: "hidden dir", path: "/cgi-bin/", status: 404},
		{name: "hidden dir no slash", path: "/cgi-bin", status: 404},
		{name: "hidden index", path: "/cgi-bin/index.html", status: 404},
		{name: "hidden via double slash", path: "/sub/..//cgi-bin/script.py", status: 404},
		{name: "hidden encoded", path: "/cgi%2Dbin/script.py", status: 404},
		{name: "hidden script dot suffix", path: "/cgi-bin/script.py.", status: 404},
		{name: "hidden script slash suffix", path: "/cgi-bin/script.py/", status: 404},
		{name: "hidden script space suffix", path: "/cgi-bin/script.py%20", status: 404},
		{name: "symlink into hidden", path: "/link-cgi.py", status: 404},

		// Symlinks.
		{name: "symlink inside", path: "/link-in.txt", status: 200, body: ok1k},
		{name: "symlink dir inside", path: "/link-sub/file.txt", status: 200, body: "in sub"},
		{name: "symlink up inside", path: "/docs/link-file", status: 200, body: ok1k},
		{name: "symlink outside", path: "/link-out.txt", status: 404},
		{name: "symlink absolute outside", path: "/link-abs.txt", status: 404},
		{name: "symlink dir outside", path: "/link-outdir/secret.txt", status: 404},
		{name: "symlink dir outside listing", path: "/link-outdir/", status: 404},
		{name: "nested symlink outside", path: "/docs/link-up/secret.txt", status: 404},
		{name: "broken symlink", path: "/link-broken", status: 404},

		// Traversal and encoding vectors.
		{name: "dotdot", path: "/../outside/secret.txt", status: 404},
		{name: "dotdot deep", path: "/sub/../../outside/secret.txt", status: 404},
		{name: "dotdot inside", path: "/sub/../1k.txt", status: 404},
		{name: "dot segment", path: "/./1k.txt", status: 404},
		{name: "encoded dotdot", path: "/%2e%2e/outside/secret.txt", status: 404},
		{name: "encoded dotdot upper", path: "/%2E%2E/outside/secret.txt", status: 404},
		{name: "half encoded dotdot", path: "/.%2e/outside/secret.txt", status: 404},
		{name: "cve-2021-41773", path: "/cgi-bin/.%2e/%2e%2e/%2e%2e/outside/secret.txt", status: 404},
		{name: "double encoded dotdot", path: "/%252e%252e/outside/secret.txt", status: 404},
		{name: "encoded slash", path: "/sub%2ffile.txt", status: 404},
		{name: "encoded slash upper", path: "/sub%2Ffile.txt", status: 404},
		{name: "dotdot encoded slash", path: "/sub/..%2f1k.txt", status: 404},
		{name: "backslash encoded", path: "/sub%5cfile.txt", status: 404},
		{name: "backslash dotdot", path: "/sub/..%5c..%5coutside%5csecret.txt", status: 404},
		{name: "nul", path: "/1k.txt%00.html", status: 404},
		{name: "semicolon", path: "/semi;colon.txt", status: 404},
		{name: "semicolon param", path: "/1k.txt;.html", status: 404},
		{name: "encoded semicolon", path: "/1k.txt%3b.html", status: 404},
		{name: "overlong dot", path: "/%c0%ae%c0%ae/outside/secret.txt", status: 404},
		{name: "overlong slash", path: "/sub%c0%affile.txt", status: 404},
		{name: "invalid utf8", path: "/%ff.txt", status: 404},
		{name: "control char", path: "/1k.txt%0a", status: 404},
	}
	runCases(t, h, cases)
}

func TestPrecompressed(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	js := "text/javascript; charset=utf-8"
	cases := []hcase{
		{name: "none", path: "/app.js", status: 200, body: "console.log('plain')\n", want: map[string]string{"Vary": "Accept-Encoding", "Content-Encoding": "", "ETag": etagOf(21, "")}},
		{name: "br", path: "/app.js", hdr: []string{"Accept-Encoding", "gzip, deflate, br, zstd"}, status: 200, body: "BR-BYTES",
			want: map[string]string{"Content-Encoding": "br", "Vary": "Accept-Encoding", "Content-Type": js, "Content-Length": "8", "ETag": etagOf(8, "br")}},
		{name: "zstd", path: "/app.js", hdr: []string{"Accept-Encoding", "gzip, zstd"}, status: 200, body: "ZSTD-BYTES", want: map[string]string{"Content-Encoding": "zstd", "Content-Type": js}},
		{name: "gzip", path: "/app.js", hdr: []string{"Accept-Encoding", "gzip"}, status: 200, body: "GZ-BYTES", want: map[string]string{"Content-Encoding": "gzip", "Content-Type": js}},
		{name: "br refused", path: "/app.js", hdr: []string{"Accept-Encoding", "br;q=0, gzip"}, status: 200, body: "GZ-BYTES"},
		{name: "q order", path: "/app.js", hdr: []string{"Accept-Encoding", "br;q=0.4, gzip;q=0.5"}, status: 200, body: "GZ-BYTES"},
		{name: "star", path: "/app.js", hdr: []string{"Accept-Encoding", "*"}, status: 200, body: "BR-BYTES"},
		{name: "star but br refused", path: "/app.js", hdr: []string{"Accept-Encoding", "*, br;q=0"}, status: 200, body: "ZSTD-BYTES"},
		{name: "identity", path: "/app.js", hdr: []string{"Accept-Encoding", "identity"}, status: 200, body: "console.log('plain')\n", want: map[string]string{"Vary": "Accept-Encoding"}},
		{name: "only gz missing br", path: "/only-gz.css", hdr: []string{"Accept-Encoding", "br"}, status: 200, body: "a{}\n", want: map[string]string{"Vary": "Accept-Encoding", "Content-Encoding": ""}},
		{name: "only gz", path: "/only-gz.css", hdr: []string{"Accept-Encoding", "br, gzip"}, status: 200, body: "GZ", want: map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{name: "no siblings no vary", path: "/style.css", hdr: []string{"Accept-Encoding", "br, gzip"}, status: 200, want: map[string]string{"Vary": "", "Content-Encoding": ""}},
		{name: "range on encoded", path: "/app.js", hdr: []string{"Accept-Encoding", "br", "Range", "bytes=0-1"}, status: 206, body: "BR",
			want: map[string]string{"Content-Range": "bytes 0-1/8", "Content-Encoding": "br"}},
		{name: "304 on encoded", path: "/app.js", hdr: []string{"Accept-Encoding", "br", "If-None-Match", etagOf(8, "br")}, status: 304, want: map[string]string{"Vary": "Accept-Encoding"}},
		{name: "plain etag no match for br", path: "/app.js", hdr: []string{"Accept-Encoding", "br", "If-None-Match", etagOf(21, "")}, status: 200, body: "BR-BYTES"},
		{name: "direct sibling", path: "/app.js.gz", status: 200, body: "GZ-BYTES", want: map[string]string{"Content-Type": "application/gzip", "Content-Encoding": ""}},
	}
	runCases(t, h, cases)

	off := false
	h2, _ := newHandler(t, func(c *config.Static) { c.Precompressed = &off }, Options{})
	runCases(t, h2, []hcase{
		{name: "precompressed off", path: "/app.js", hdr: []string{"Accept-Encoding", "br"}, status: 200, body: "console.log('plain')\n", want: map[string]string{"Vary": "", "Content-Encoding": ""}},
	})
}

func TestConditional(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	tag := etagOf(10, "")
	before := fixedTime.Add(-time.Hour).Format(http.TimeFormat)
	after := fixedTime.Add(time.Hour).Format(http.TimeFormat)
	cases := []hcase{
		{name: "inm match", path: "/digits.txt", hdr: []string{"If-None-Match", tag}, status: 304, body: "", want: map[string]string{"ETag": tag, "Content-Length": ""}},
		{name: "inm weak", path: "/digits.txt", hdr: []string{"If-None-Match", "W/" + tag}, status: 304},
		{name: "inm list", path: "/digits.txt", hdr: []string{"If-None-Match", `"nope", ` + tag}, status: 304},
		{name: "inm star", path: "/digits.txt", hdr: []string{"If-None-Match", "*"}, status: 304},
		{name: "inm miss", path: "/digits.txt", hdr: []string{"If-None-Match", `"nope"`}, status: 200, body: "0123456789"},
		{name: "inm head", method: "HEAD", path: "/digits.txt", hdr: []string{"If-None-Match", tag}, status: 304},
		{name: "ims equal", path: "/digits.txt", hdr: []string{"If-Modified-Since", lastMod}, status: 304},
		{name: "ims later", path: "/digits.txt", hdr: []string{"If-Modified-Since", after}, status: 304},
		{name: "ims earlier", path: "/digits.txt", hdr: []string{"If-Modified-Since", before}, status: 200},
		{name: "ims bad date", path: "/digits.txt", hdr: []string{"If-Modified-Since", "yesterday"}, status: 200},
		{name: "inm wins over ims", path: "/digits.txt", hdr: []string{"If-None-Match", `"nope"`, "If-Modified-Since", after}, status: 200},
		{name: "if-match miss", path: "/digits.txt", hdr: []string{"If-Match", `"nope"`}, status: 412},
		{name: "if-match weak fails strong", path: "/digits.txt", hdr: []string{"If-Match", "W/" + tag}, status: 412},
		{name: "if-match ok", path: "/digits.txt", hdr: []string{"If-Match", tag}, status: 200},
		{name: "if-match star", path: "/digits.txt", hdr: []string{"If-Match", "*"}, status: 200},
		{name: "ius earlier", path: "/digits.txt", hdr: []string{"If-Unmodified-Since", before}, status: 412},
		{name: "ius equal", path: "/digits.txt", hdr: []string{"If-Unmodified-Since", lastMod}, status: 200},
	}
	runCases(t, h, cases)
}

func TestRanges(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	tag := etagOf(10, "")
	big := bigContent()
	cases := []hcase{
		{name: "first", path: "/digits.txt", hdr: []string{"Range", "bytes=0-3"}, status: 206, body: "0123",
			want: map[string]string{"Content-Range": "bytes 0-3/10", "Content-Length": "4", "Content-Type": "text/plain; charset=utf-8"}},
		{name: "suffix", path: "/digits.txt", hdr: []string{"Range", "bytes=-3"}, status: 206, body: "789", want: map[string]string{"Content-Range": "bytes 7-9/10"}},
		{name: "suffix longer than file", path: "/digits.txt", hdr: []string{"Range", "bytes=-500"}, status: 206, body: "0123456789", want: map[string]string{"Content-Range": "bytes 0-9/10"}},
		{name: "open ended", path: "/digits.txt", hdr: []string{"Range", "bytes=7-"}, status: 206, body: "789"},
		{name: "end past size", path: "/digits.txt", hdr: []string{"Range", "bytes=8-100"}, status: 206, body: "89", want: map[string]string{"Content-Range": "bytes 8-9/10"}},
		{name: "unsatisfiable", path: "/digits.txt", hdr: []string{"Range", "bytes=10-"}, status: 416, want: map[string]string{"Content-Range": "bytes */10"}},
		{name: "unsatisfiable suffix 0", path: "/digits.txt", hdr: []string{"Range", "bytes=-0"}, status: 416},
		{name: "malformed ignored", path: "/digits.txt", hdr: []string{"Range", "bytes=x-y"}, status: 200, body: "0123456789"},
		{name: "other unit ignored", path: "/digits.txt", hdr: []string{"Range", "items=0-1"}, status: 200, body: "0123456789"},
		{name: "reversed ignored", path: "/digits.txt", hdr: []string{"Range", "bytes=5-1"}, status: 200},
		{name: "head ignores range", method: "HEAD", path: "/digits.txt", hdr: []string{"Range", "bytes=0-3"}, status: 200, want: map[string]string{"Content-Length": "10", "Content-Range": ""}},
		{name: "if-range etag ok", path: "/digits.txt", hdr: []string{"Range", "bytes=0-0", "If-Range", tag}, status: 206, body: "0"},
		{name: "if-range etag stale", path: "/digits.txt", hdr: []string{"Range", "bytes=0-0", "If-Range", `"old"`}, status: 200, body: "0123456789"},
		{name: "if-range weak", path: "/digits.txt", hdr: []string{"Range", "bytes=0-0", "If-Range", "W/" + tag}, status: 200},
		{name: "if-range date ok", path: "/digits.txt", hdr: []string{"Range", "bytes=0-0", "If-Range", lastMod}, status: 206},
		{name: "if-range date stale", path: "/digits.txt", hdr: []string{"Range", "bytes=0-0", "If-Range", fixedTime.Add(-time.Hour).Format(http.TimeFormat)}, status: 200},
		{name: "empty file ignores", path: "/empty.txt", hdr: []string{"Range", "bytes=0-"}, status: 200},
		{name: "too many ranges ignored", path: "/digits.txt", hdr: []string{"Range", "bytes=" + strings.Repeat("0-0,", 40) + "0-0"}, status: 200},
		{name: "overlap beyond size ignored", path: "/digits.txt", hdr: []string{"Range", "bytes=0-9,0-9"}, status: 200},
		{name: "big from disk", path: "/big.bin", hdr: []string{"Range", "bytes=100000-100009"}, status: 206, body: string(big[100000:100010]),
			want: map[string]string{"Content-Range": fmt.Sprintf("bytes 100000-100009/%d", bigSize)}},
		{name: "big suffix", path: "/big.bin", hdr: []string{"Range", "bytes=-5"}, status: 206, body: string(big[bigSize-5:])},
	}
	runCases(t, h, cases)
}

func TestMultipartRanges(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	big := bigContent()
	for _, c := range []struct {
		path, spec string
		want       []string
		ranges     []string
		size       int
	}{
		{"/digits.txt", "bytes=0-1, 5-6,-2", []string{"01", "56", "89"}, []string{"bytes 0-1/10", "bytes 5-6/10", "bytes 8-9/10"}, 10},
		{"/digits.txt", "bytes=0-0,20-30,9-", []string{"0", "9"}, []string{"bytes 0-0/10", "bytes 9-9/10"}, 10},
		{"/big.bin", "bytes=0-2,150000-150003", []string{string(big[:3]), string(big[150000:150004])},
			[]string{"bytes 0-2/204800", "bytes 150000-150003/204800"}, bigSize},
	} {
		for proto, send := range servers(t, h) {
			t.Run(proto+c.path+c.spec, func(t *testing.T) {
				req := &http.Request{Method: "GET", URL: newOpaque(c.path), Header: http.Header{"Range": {c.spec}}}
				resp := send(req)
				defer resp.Body.Close()
				if resp.StatusCode != 206 {
					t.Fatalf("got status %d, want 206", resp.StatusCode)
				}
				mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				if err != nil || mt != "multipart/byteranges" {
					t.Fatalf("got Content-Type %q, want multipart/byteranges", resp.Header.Get("Content-Type"))
				}
				raw := body(t, resp.Body)
				if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(raw)) {
					t.Errorf("got Content-Length %q, want %q", cl, strconv.Itoa(len(raw)))
				}
				mr := multipart.NewReader(strings.NewReader(raw), params["boundary"])
				for i := 0; ; i++ {
					p, err := mr.NextPart()
					if err != nil {
						if i != len(c.want) {
							t.Fatalf("got %d parts, want %d (%v)", i, len(c.want), err)
						}
						break
					}
					if got := body(t, p); i >= len(c.want) || got != c.want[i] {
						t.Errorf("part %d: got %q", i, got)
						continue
					}
					if got := p.Header.Get("Content-Range"); got != c.ranges[i] {
						t.Errorf("part %d Content-Range: got %q, want %q", i, got, c.ranges[i])
					}
				}
			})
		}
	}
}

func TestSPA(t *testing.T) {
	h, _ := newHandler(t, func(c *config.Static) { c.SPA = true; c.CacheControl = "max-age=60" }, Options{Prefix: "/app"})
	nav := []string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
	runCases(t, h, []hcase{
		{name: "navigation", path: "/app/users/42", hdr: nav, status: 200, body: "<h1>home</h1>\n", want: map[string]string{"Cache-Control": "no-cache", "Content-Type": "text/html; charset=utf-8"}},
		{name: "head navigation", method: "HEAD", path: "/app/users/42", hdr: nav, status: 200, want: map[string]string{"Cache-Control": "no-cache"}},
		{name: "nested gets root index", path: "/app/spa/deep/link", hdr: nav, status: 200, body: "<h1>home</h1>\n"},
		{name: "asset star", path: "/app/assets/x.js", hdr: []string{"Accept", "*/*"}, status: 404},
		{name: "asset no accept", path: "/app/assets/x.js", status: 404},
		{name: "html q0", path: "/app/users/42", hdr: []string{"Accept", "text/html;q=0, */*"}, status: 404},
		{name: "existing file", path: "/app/assets/app.css", hdr: nav, status: 200, body: "asset", want: map[string]string{"Cache-Control": "max-age=60"}},
		{name: "dotfile not spa-served as itself", path: "/app/.env", hdr: nav, status: 404},
		{name: "post not spa", method: "POST", path: "/app/users/42", hdr: nav, status: 405},
		{name: "outside prefix", path: "/other/x", hdr: nav, status: 404},
		{name: "prefix redirect", path: "/app", status: 301, want: map[string]string{"Location": "/app/"}},
		{name: "prefix root", path: "/app/", status: 200, body: "<h1>home</h1>\n", want: map[string]string{"Cache-Control": "max-age=60"}},
	})
}

func TestFallback(t *testing.T) {
	fb := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Fallback", r.Method)
		w.WriteHeader(299)
	})
	h, _ := newHandler(t, func(c *config.Static) { c.SPA = true }, Options{Fallback: fb})
	nav := []string{"Accept", "text/html"}
	runCases(t, h, []hcase{
		{name: "missing get", path: "/api/x", status: 299, want: map[string]string{"X-Fallback": "GET"}},
		{name: "missing post", method: "POST", path: "/api/x", status: 299, want: map[string]string{"X-Fallback": "POST"}},
		{name: "missing html asks the app first", path: "/page", hdr: nav, status: 299, want: map[string]string{"X-Fallback": "GET"}},
		{name: "file get", path: "/digits.txt", status: 200, body: "0123456789", want: map[string]string{"X-Fallback": ""}},
		{name: "file post", method: "POST", path: "/digits.txt", status: 405},
		{name: "dir without index", path: "/empty/", status: 299},
		{name: "rejected path goes to app", path: "/a;b", status: 299},
	})
}

// TestSPAWithFallback is the quick-mode trap (serve --spa --proxy): a
// navigation to a path the app serves (an OAuth callback, /admin) gets the
// app's answer; only the app's 404 becomes the SPA's index.html, and
// non-navigations keep the app's 404.
func TestSPAWithFallback(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/admin", "/oauth/callback":
			w.Header().Set("X-App", "yes")
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("app page"))
		case "/login":
			http.Redirect(w, r, "/oauth/start", http.StatusFound)
		default:
			w.Header().Set("X-App", "404")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("app: no such page"))
		}
	})
	h, _ := newHandler(t, func(c *config.Static) { c.SPA = true }, Options{Fallback: app})
	nav := []string{"Accept", "text/html,application/xhtml+xml"}
	runCases(t, h, []hcase{
		{name: "app page", path: "/admin", hdr: nav, status: 200, body: "app page", want: map[string]string{"X-App": "yes"}},
		{name: "oauth callback", path: "/oauth/callback", hdr: nav, status: 200, body: "app page"},
		{name: "app redirect", path: "/login", hdr: nav, status: 302, want: map[string]string{"Location": "/oauth/start"}},
		{name: "app 404 becomes the spa index", path: "/users/42", hdr: nav, status: 200, body: "<h1>home</h1>\n",
			want: map[string]string{"X-App": "", "Content-Type": "text/html; charset=utf-8"}},
		{name: "asset 404 stays 404", path: "/assets/x.js", hdr: []string{"Accept", "*/*"}, status: 404, body: "app: no such page"},
		{name: "file first", path: "/digits.txt", hdr: nav, status: 200, body: "0123456789", want: map[string]string{"X-App": ""}},
	})
}

func TestCacheControlAndDotfiles(t *testing.T) {
	h, _ := newHandler(t, func(c *config.Static) { c.CacheControl = "public, max-age=3600"; c.Dotfiles = true }, Options{})
	runCases(t, h, []hcase{
		{name: "cache-control", path: "/style.css", status: 200, want: map[string]string{"Cache-Control": "public, max-age=3600"}},
		{name: "dotfile allowed", path: "/.env", status: 200, body: "SECRET=1"},
		{name: "dot dir allowed", path: "/.well/known.txt", status: 200, body: "dot dir"},
		{name: "dotdot still refused", path: "/sub/../1k.txt", status: 404},
		{name: "encoded dotdot still refused", path: "/%2e%2e/outside/secret.txt", status: 404},
		{name: "hidden still hidden", path: "/cgi-bin/script.py", status: 404},
	})
}

func TestPrefix(t *testing.T) {
	h, _ := newHandler(t, nil, Options{Prefix: "/.well-known"})
	runCases(t, h, []hcase{
		{name: "dotted prefix ok", path: "/.well-known/digits.txt", status: 200, body: "0123456789"},
		{name: "dotfile below prefix", path: "/.well-known/.env", status: 404},
		{name: "prefix must end at segment", path: "/.well-knownx/digits.txt", status: 404},
	})
}

// TestRawTraversal sends request-targets byte for byte, as an attacker's
// client would, bypassing any client-side cleaning.
func TestRawTraversal(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	for _, target := range []string{
		"/../outside/secret.txt",
		"/..%2foutside/secret.txt",
		"/%2e%2e/outside/secret.txt",
		"/sub/%2e%2e/%2e%2e/outside/secret.txt",
		"/..\\outside\\secret.txt",
		"/%5c..%5coutside%5csecret.txt",
		"/link-out.txt",
		"/link-outdir/secret.txt",
		"/cgi-bin/script.py",
		"/cgi-bin/./script.py",
		"/cgi-bin//script.py",
		"/%63gi-bin/script.py",
		"/.env",
		"/%2Eenv",
	} {
		t.Run(target, func(t *testing.T) {
			c, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
			resp := body(t, c)
			if strings.Contains(resp, "TOP SECRET") || strings.Contains(resp, "print(") || strings.Contains(resp, "SECRET=1") {
				t.Fatalf("leaked: %q", resp)
			}
			if !strings.HasPrefix(resp, "HTTP/1.1 404") && !strings.HasPrefix(resp, "HTTP/1.1 400") {
				t.Fatalf("got %q, want a 404 or 400", firstLine(resp))
			}
		})
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\r'); i >= 0 {
		return s[:i]
	}
	return s
}

// TestEditsShowUp checks the cache revalidation: a changed, removed or new
// file is seen after the revalidation interval.
func TestEditsShowUp(t *testing.T) {
	h, root := newHandler(t, nil, Options{})
	h.cache.revalidate = int64(20 * time.Millisecond)
	get := func(p string) (int, string) {
		w := do(h, "GET", p)
		return w.Code, w.Body.String()
	}
	if code, b := get("/digits.txt"); code != 200 || b != "0123456789" {
		t.Fatalf("got %d %q", code, b)
	}
	if code, _ := get("/new.txt"); code != 404 {
		t.Fatalf("got %d, want 404", code)
	}
	os.WriteFile(filepath.Join(root, "digits.txt"), []byte("changed"), 0o644)
	os.WriteFile(filepath.Join(root, "new.txt"), []byte("new"), 0o644)
	os.WriteFile(filepath.Join(root, "style.css.br"), []byte("BR"), 0o644)
	os.Remove(filepath.Join(root, "1k.txt"))
	time.Sleep(clockTick + 100*time.Millisecond)
	for _, c := range []struct {
		path, ae string
		code     int
		body     string
	}{
		{"/digits.txt", "", 200, "changed"},
		{"/new.txt", "", 200, "new"},
		{"/1k.txt", "", 404, ""},
		{"/style.css", "br", 200, "BR"},
	} {
		w := do(h, "GET", c.path, "Accept-Encoding", c.ae)
		if w.Code != c.code || (c.body != "" && w.Body.String() != c.body) {
			t.Errorf("%s: got %d %q, want %d %q", c.path, w.Code, w.Body.String(), c.code, c.body)
		}
	}
}

// TestBigFileChanged checks that a large file replaced between lookup and
// open is not sent with the old length.
func TestBigFileChanged(t *testing.T) {
	h, root := newHandler(t, nil, Options{})
	h.cache.revalidate = int64(time.Hour)
	if w := do(h, "GET", "/big.bin"); w.Code != 200 || w.Body.Len() != bigSize {
		t.Fatalf("got %d len %d", w.Code, w.Body.Len())
	}
	p := filepath.Join(root, "big.bin")
	os.WriteFile(p, make([]byte, bigSize+100), 0o644)
	w := do(h, "GET", "/big.bin")
	if w.Code != 200 || w.Body.Len() != bigSize+100 || w.Header().Get("Content-Length") != strconv.Itoa(bigSize+100) {
		t.Fatalf("got %d len %d Content-Length %q, want the new file", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

func TestCacheBounded(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	h.cache.maxEntries = 10
	for i := 0; i < 100; i++ {
		do(h, "GET", "/missing-"+strconv.Itoa(i))
	}
	if n := len(h.cache.miss); n > 10/4 {
		t.Fatalf("got %d cached misses, want <= %d", n, 10/4)
	}
	// A flood of misses does not push the hot files out.
	do(h, "GET", "/style.css")
	hot := h.cache.get("style.css")
	for i := 0; i < 100; i++ {
		do(h, "GET", "/flood-"+strconv.Itoa(i))
	}
	if got := h.cache.get("style.css"); got != hot || hot == nil {
		t.Fatalf("hot file evicted by misses")
	}
	h.cache.maxEntries = 4
	for _, p := range []string{"/docs/readme.txt", "/sub/file.txt", "/digits.txt", "/1k.txt", "/app.js", "/noext", "/binary", "/docs/zz.txt"} {
		if w := do(h, "GET", p); w.Code != 200 {
			t.Fatalf("%s: got %d", p, w.Code)
		}
	}
	if n := len(h.cache.m); n > 4 {
		t.Fatalf("got %d cache entries, want <= 4", n)
	}
	h.cache.maxBytes = 100
	do(h, "GET", "/1k.txt")
	do(h, "GET", "/digits.txt")
	if h.cache.bytes > 1024+100 {
		t.Fatalf("got %d cached bytes", h.cache.bytes)
	}
}

func TestNewErrors(t *testing.T) {
	root, _ := fixture(t)
	for _, c := range []struct {
		name string
		cfg  config.Static
		opts Options
	}{
		{"no root", config.Static{}, Options{}},
		{"missing root", config.Static{Root: filepath.Join(root, "nope")}, Options{}},
		{"root is file", config.Static{Root: filepath.Join(root, "1k.txt")}, Options{}},
		{"index traversal", config.Static{Root: root, Index: []string{"../x.html"}}, Options{}},
		{"index with slash", config.Static{Root: root, Index: []string{"a/b.html"}}, Options{}},
		{"prefix with slash", config.Static{Root: root}, Options{Prefix: "/a/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if h, err := New(c.cfg, c.opts); err == nil {
				h.Close(context.Background())
				t.Fatalf("got nil error, want one")
			}
		})
	}
}

func TestLookup(t *testing.T) {
	h, _ := newHandler(t, nil, Options{Prefix: "/s"})
	e, err := h.lookup("/s/app.js", "", "gzip, br", false)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Body) != "BR-BYTES" || e.Encoding != "br" || !e.Vary {
		t.Fatalf("got %q %q %v", e.Body, e.Encoding, e.Vary)
	}
	wantHead := "Content-Type: text/javascript; charset=utf-8\r\nContent-Length: 8\r\nETag: " + etagOf(8, "br") +
		"\r\nLast-Modified: " + lastMod + "\r\nAccept-Ranges: bytes\r\nContent-Encoding: br\r\nVary: Accept-Encoding\r\n"
	if string(e.Head) != wantHead {
		t.Errorf("Head: got %q, want %q", e.Head, wantHead)
	}
	if e, err := h.lookup("/s/big.bin", "", "", false); err != nil || e.Body != nil {
		t.Fatalf("big: got %v, %v", e, err)
	} else {
		f, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, c := range []struct {
		path, raw string
		want      error
	}{
		{"/s/sub", "", errRedirect},
		{"/s/missing", "", errMissing},
		{"/s/../x", "", os.ErrNotExist},
		{"/s/sub/file.txt", "/s/sub%2ffile.txt", os.ErrNotExist},
	} {
		if _, err := h.lookup(c.path, c.raw, "", false); err != c.want {
			t.Errorf("%s: got %v, want %v", c.path, err, c.want)
		}
	}
	if e, err := h.lookup("/s/sub/", "", "", false); err != nil || string(e.Body) != "<p>sub</p>\n" {
		t.Errorf("index: got %v", err)
	}
}

// TestPermission checks the error mapping for an unreadable file.
func TestPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	h, root := newHandler(t, nil, Options{})
	p := filepath.Join(root, "secret.txt")
	os.WriteFile(p, []byte("x"), 0o000)
	if w := do(h, "GET", "/secret.txt"); w.Code != 403 {
		t.Fatalf("got %d, want 403", w.Code)
	}
}

// newOpaque makes a URL whose request-target is sent exactly as written.
func newOpaque(target string) *url.URL {
	p, q, _ := strings.Cut(target, "?")
	return &url.URL{Opaque: p, RawQuery: q}
}

func TestContentTypeTable(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"a.html", "text/html; charset=utf-8"},
		{"A.HTML", "text/html; charset=utf-8"},
		{"a.css", "text/css; charset=utf-8"},
		{"a.js", "text/javascript; charset=utf-8"},
		{"a.mjs", "text/javascript; charset=utf-8"},
		{"a.json", "application/json"},
		{"a.svg", "image/svg+xml"},
		{"a.wasm", "application/wasm"},
		{"a.png", "image/png"},
		{"a.jpg", "image/jpeg"},
		{"a.gif", "image/gif"},
		{"a.webp", "image/webp"},
		{"a.ico", "image/vnd.microsoft.icon"},
		{"a.txt", "text/plain; charset=utf-8"},
		{"a.xml", "text/xml; charset=utf-8"},
		{"a.pdf", "application/pdf"},
		{"a.woff2", "font/woff2"},
		{"a.map", "application/json"},
		{"noext", "text/plain; charset=utf-8"},
		{"a.unknownext", "text/plain; charset=utf-8"},
	} {
		if got := contentType(c.name, []byte("plain words")); got != c.want {
			t.Errorf("contentType(%q): got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestConcurrentEdits hammers the cache while files change, for -race.
func TestConcurrentEdits(t *testing.T) {
	h, root := newHandler(t, nil, Options{})
	h.cache.revalidate = 0
	h.cache.maxEntries = 8
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Sites are deployed by rename; a file truncated in place
			// while being sent gives a short body, as with any server.
			replace(t, filepath.Join(root, "digits.txt"), []byte(strings.Repeat("d", i%100+1)))
			replace(t, filepath.Join(root, "big.bin"), make([]byte, bigSize+i%7))
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				for _, p := range []string{"/digits.txt", "/big.bin", "/app.js", "/sub/", "/missing", "/docs/readme.txt"} {
					w := do(h, "GET", p, "Accept-Encoding", "br")
					if cl := w.Header().Get("Content-Length"); w.Code == 200 && cl != strconv.Itoa(w.Body.Len()) {
						t.Errorf("%s: Content-Length %s, body %d", p, cl, w.Body.Len())
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-done
}

func TestCloseStopsClock(t *testing.T) {
	root, _ := fixture(t)
	before := clock.users
	h, err := New(config.Static{Root: root}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if clock.users != before+1 {
		t.Fatalf("clock users: got %d, want %d", clock.users, before+1)
	}
	h.Close(context.Background())
	h.Close(context.Background()) // twice is harmless
	if clock.users != before {
		t.Fatalf("clock users after Close: got %d, want %d", clock.users, before)
	}
}

// replace writes a file the way deployments do: a new file, renamed over.
func replace(t *testing.T, path string, data []byte) {
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Error(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

// TestHideWholeRoot: a cgi root that is the static root hides everything,
// and New says so in the log.
func TestHideWholeRoot(t *testing.T) {
	root, _ := fixture(t)
	var logged strings.Builder
	cfg := config.Static{Root: root, Hide: []string{root}}
	cfg.SetDefaults()
	h, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	for _, p := range []string{"/", "/digits.txt", "/sub/file.txt"} {
		if w := do(h, "GET", p); w.Code != 404 {
			t.Errorf("%s: got %d, want 404", p, w.Code)
		}
	}
	if !strings.Contains(logged.String(), "hidden") {
		t.Errorf("no warning logged: %q", logged.String())
	}
}

// TestHiddenThroughSymlinkedParent: a link to the root (or any parent of a
// hidden folder) must not open a second way to the scripts.
func TestHiddenThroughSymlinkedParent(t *testing.T) {
	h, root := newHandler(t, nil, Options{})
	if err := os.Symlink(".", filepath.Join(root, "again")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("cgi-bin", filepath.Join(root, "scripts")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		code int
	}{
		{"/again/digits.txt", 200},
		{"/again/cgi-bin/script.py", 404},
		{"/again/again/cgi-bin/script.py", 404},
		{"/scripts/script.py", 404},
		{"/scripts/", 404},
	} {
		if w := do(h, "GET", c.path); w.Code != c.code {
			t.Errorf("%s: got %d, want %d", c.path, w.Code, c.code)
		}
	}
}

// readFromRecorder records what the handler hands to ReadFrom.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	srcs []string
}

func (w *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	desc := fmt.Sprintf("%T", src)
	if lr, ok := src.(*io.LimitedReader); ok {
		desc += fmt.Sprintf("(%T)", lr.R)
	}
	w.srcs = append(w.srcs, desc)
	return io.Copy(w.ResponseRecorder, src)
}

// TestLargeFilesUseSendfile checks that large files reach the
// ResponseWriter's ReadFrom as an *os.File (under an io.LimitedReader),
// which is what lets net/http use sendfile.
func TestLargeFilesUseSendfile(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	for _, c := range []struct {
		rng  string
		want int
	}{{"", 1}, {"bytes=10-20", 1}, {"bytes=0-1,100-200", 2}} {
		w := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
		r := httptest.NewRequest("GET", "/big.bin", nil)
		if c.rng != "" {
			r.Header.Set("Range", c.rng)
		}
		h.ServeHTTP(w, r)
		if len(w.srcs) != c.want {
			t.Fatalf("%q: got %d ReadFrom calls (%q), want %d", c.rng, len(w.srcs), w.srcs, c.want)
		}
		for _, s := range w.srcs {
			if s != "*io.LimitedReader(*os.File)" {
				t.Errorf("%q: got ReadFrom(%s), want ReadFrom(*io.LimitedReader(*os.File))", c.rng, s)
			}
		}
	}
}

// TestFIFONotOpened: a named pipe in the root is 404 at once; opening it
// would block the request (and the loader) until a writer appeared.
func TestFIFONotOpened(t *testing.T) {
	h, root := newHandler(t, func(c *config.Static) { c.Browse = true }, Options{})
	if err := syscall.Mkfifo(filepath.Join(root, "empty", "pipe"), 0o644); err != nil {
		t.Skip(err)
	}
	done := make(chan int, 1)
	go func() { done <- do(h, "GET", "/empty/pipe").Code }()
	select {
	case code := <-done:
		if code != 404 {
			t.Errorf("got %d, want 404", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("request for a FIFO hangs")
	}
	if b := do(h, "GET", "/empty/").Body.String(); strings.Contains(b, "pipe") {
		t.Errorf("listing shows the FIFO")
	}
}
