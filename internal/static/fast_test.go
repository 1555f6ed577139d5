package static

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/fastpath"
)

// rawRequest is a raw HTTP/1.1 request with extra header fields (name,
// value pairs).
func rawRequest(method, target string, hdr []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: example.test\r\n", method, target)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	return b.String() + "\r\n"
}

// The fast path answers exactly as ServeHTTP does: same status, header
// fields and body; and it answers the plain hits itself.
func TestServeFastMatchesServeHTTP(t *testing.T) {
	h, _ := newHandler(t, func(c *config.Static) { c.CacheControl = "public, max-age=60" }, Options{})
	f := enginetest.Start(t, h, nil)
	lm := fixedTime.UTC().Format(http.TimeFormat)
	tests := []struct {
		method, target string
		hdr            []string
		fast           bool
	}{
		{"GET", "/1k.txt", nil, true},
		{"HEAD", "/1k.txt", nil, true},
		{"GET", "/style.css?v=1", nil, true},
		{"GET", "/", nil, true},
		{"GET", "/sub/", nil, true},
		{"GET", "/a%20b.txt", nil, true},
		{"GET", "/%C3%BCn%C3%AF.txt", nil, true},
		{"GET", "/empty.txt", nil, true},
		{"GET", "/noext", nil, true},
		{"GET", "/big.bin", nil, true},
		{"HEAD", "/big.bin", nil, true},
		{"GET", "/app.js", []string{"Accept-Encoding", "gzip, br"}, true},
		{"GET", "/app.js", []string{"Accept-Encoding", "gzip;q=1, br;q=0.5"}, true},
		{"GET", "/app.js", []string{"Accept-Encoding", "identity"}, true},
		{"GET", "/app.js", nil, true},
		{"GET", "/only-gz.css", []string{"Accept-Encoding", "gzip"}, true},
		{"GET", "/1k.txt", []string{"If-None-Match", `"nope", W/"x"`}, true},
		{"GET", "/1k.txt", []string{"If-Modified-Since", lm}, true},
		{"GET", "/1k.txt", []string{"If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}, true},
		{"GET", "/1k.txt", []string{"If-Modified-Since", "garbage"}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=2-4"}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=-3"}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=7-"}, true},
		{"HEAD", "/digits.txt", []string{"Range", "bytes=2-4"}, true},
		{"GET", "/digits.txt", []string{"Range", "items=1-2"}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=2-4", "If-Range", `"stale"`}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=2-4", "If-Range", lm}, true},
		{"GET", "/big.bin", []string{"Range", "bytes=100000-100009"}, true},
		{"GET", "/app.js", []string{"Range", "bytes=0-1", "Accept-Encoding", "br"}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=1-2,5-6"}, false},
		{"HEAD", "/digits.txt", []string{"Range", "bytes=50-60"}, true},
		{"GET", "/app.js", []string{"Range", "bytes=5000-", "Accept-Encoding", "br", "Accept", "text/html"}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=50-60"}, true}, // 412/416 page
		{"GET", "/1k.txt", []string{"If-Match", `"x"`}, true},          // 412/416 page
		{"GET", "/1k.txt", []string{"If-Unmodified-Since", lm}, true},  // 200 now: the fast path shares the precondition decision
		{"GET", "/missing.txt", nil, true},                             // 404 page, on the fast path
		{"HEAD", "/missing.txt", nil, true},
		{"GET", "/missing.txt", []string{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}, true},
		{"HEAD", "/missing.txt", []string{"Accept", "text/html"}, true},
		{"GET", "/missing.txt", []string{"Connection", "close"}, true},
		{"GET", "/sub", nil, false},
		{"GET", "/docs/", nil, true},                     // 404 page, on the fast path
		{"GET", "/1k.txt/", nil, true},                   // 404 page, on the fast path
		{"GET", "/.env", nil, true},                      // 404 page, on the fast path
		{"GET", "/%2e%2e/outside/secret.txt", nil, true}, // 404 page, on the fast path
		{"GET", "/sub%2ffile.txt", nil, true},            // 404 page, on the fast path
		{"GET", "/cgi-bin/script.py", nil, true},         // 404 page, on the fast path
		{"GET", "/link-out.txt", nil, true},              // 404 page, on the fast path
		{"GET", "/link-in.txt", nil, true},
		{"GET", "/semi;colon.txt", nil, true}, // 404 page, on the fast path
		{"POST", "/1k.txt", nil, false},
		// Empty fields count as absent on both engines (the fast path
		// cannot tell them apart; net/http's fs.go reads them so too).
		{"GET", "/1k.txt", []string{"If-Match", ""}, true},
		{"GET", "/1k.txt", []string{"If-None-Match", "", "If-Modified-Since", lm}, true},
		{"GET", "/digits.txt", []string{"Range", "bytes=2-4", "If-Range", ""}, true},
		{"GET", "/1k.txt", []string{"If-Unmodified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}, true}, // 412/416 page
		{"HEAD", "/1k.txt", []string{"If-Match", `"x"`}, true},                                     // 412/416 page
		{"GET", "/1k.txt", []string{"If-Match", `"x"`, "If-None-Match", "*"}, true},                // 412/416 page
	}
	for _, tt := range tests {
		raw := rawRequest(tt.method, tt.target, tt.hdr)
		if tt.fast {
			f.Same(t, true, raw)
			continue
		}
		got := f.Declines(t, raw)
		want := enginetest.Do(t, f.Normal, raw)[0]
		if strings.HasPrefix(want.Header.Get("Content-Type"), "multipart/") {
			// Random boundaries; both answers come from ServeHTTP.
			for _, r := range []*enginetest.Result{&got, &want} {
				r.Header.Del("Content-Type")
				r.Header.Del("Content-Length")
				r.Body, r.CLen = "", 0
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q:\nfast:   %+v\nnormal: %+v", raw, got, want)
		}
	}
	// The ETag match case needs the ETag first.
	etag := enginetest.Do(t, f.Normal, rawRequest("GET", "/1k.txt", nil))[0].Header.Get("ETag")
	for _, hdr := range [][]string{
		{"If-None-Match", etag}, {"If-None-Match", "*"}, {"If-None-Match", "W/" + etag + ", \"x\""},
		{"If-Match", etag, "If-None-Match", etag}, // RFC 9110 13.2.2: If-Match holds, then 304
	} {
		if got := f.Same(t, true, rawRequest("GET", "/1k.txt", hdr))[0]; got.Status != 304 {
			t.Errorf("%q: got status %d, want 304", hdr, got.Status)
		}
	}
	// If-Match holds: the fast path serves the file (RFC 9110 13.1.1).
	f.Same(t, true, rawRequest("GET", "/1k.txt", []string{"If-Match", etag}))
	f.Same(t, true, rawRequest("GET", "/digits.txt", []string{"If-Match", "*", "Range", "bytes=1-2"}))
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// A hit of an in-memory file allocates nothing: 200, 304, a single range,
// a holding If-Match. (A file served from disk costs its open.)
func TestServeFastNoAllocs(t *testing.T) {
	h, _ := newHandler(t, func(c *config.Static) { c.CacheControl = "public, max-age=60" }, Options{})
	e, err := h.lookup("/digits.txt", "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*fastpath.Request{
		{Path: "/1k.txt", AcceptEncoding: "gzip, br", IfModifiedSince: "Mon, 02 Jan 2006 15:04:05 GMT"},
		{Path: "/digits.txt", IfNoneMatch: e.ETag[0]},
		{Path: "/digits.txt", Range: "bytes=2-4", IfRange: e.ETag[0]},
		{Path: "/app.js", AcceptEncoding: "br", IfModifiedSince: e.LastModified[0]},
		{Path: "/digits.txt", IfMatch: e.ETag[0], IfUnmodifiedSince: e.LastModified[0]},
	} {
		req.Method, req.Proto, req.ProtoMinor, req.RawPath, req.KeepAlive = "GET", "HTTP/1.1", 1, req.Path, true
		rec := fastpath.NewRecorder()
		if !rec.Serve(h, req) {
			t.Fatalf("%+v: not served", req)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if !rec.Serve(h, req) {
				t.Fatal("not served")
			}
		})
		if allocs != 0 {
			t.Errorf("%s %+v: got %v allocs per hit, want 0", req.Path, req, allocs)
		}
	}
}

// BenchmarkServeFast1KiB is a cache hit of a 1 KiB file on the fast path,
// header and body composed (no socket).
func BenchmarkServeFast1KiB(b *testing.B) {
	h, _ := newHandler(b, nil, Options{})
	req := &fastpath.Request{Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, Path: "/1k.txt", RawPath: "/1k.txt",
		AcceptEncoding: "gzip, deflate, br", KeepAlive: true, Start: time.Now()}
	rec := fastpath.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if !rec.Serve(h, req) {
			b.Fatal("not served")
		}
	}
}

// connExchange sends raw on a new connection, half-closes it and returns
// everything the server writes until it closes.
func connExchange(t *testing.T, addr string, raw []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		c.Write(raw)
		c.(*net.TCPConn).CloseWrite()
	}()
	out, err := io.ReadAll(c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("%q: reading: %v (got %q)", raw, err, out)
	}
	return out
}

// normalizeResponses makes two response streams comparable: Date lines
// go, and the field lines of each header block are sorted (net/http writes
// them in key order, the fast path in its own).
func normalizeResponses(b []byte) string {
	s := string(b)
	idx := statusLine.FindAllStringIndex(s, -1)
	if len(idx) == 0 {
		return s
	}
	out := s[:idx[0][0]]
	for i, m := range idx {
		end := len(s)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		resp := s[m[0]:end]
		head, body, ok := strings.Cut(resp, "\r\n\r\n")
		if !ok {
			out += resp
			continue
		}
		lines := strings.Split(head, "\r\n")
		fields := lines[1:]
		keep := fields[:0]
		for _, l := range fields {
			if !strings.HasPrefix(l, "Date: ") {
				keep = append(keep, l)
			}
		}
		sort.Strings(keep)
		out += lines[0] + "|" + strings.Join(keep, "|") + "||" + body + "\n"
	}
	return out
}

var statusLine = regexp.MustCompile(`HTTP/1\.[01] [0-9]{3} `)

// FuzzFastPathConnection sends the same byte stream (pipelined requests,
// good and bad) to the fast path in front of net/http and to net/http
// alone: the responses must be the same, whichever requests the fast path
// answered and wherever it handed the connection off.
func FuzzFastPathConnection(f *testing.F) {
	h, _ := newHandler(f, nil, Options{})
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	fl := fastpath.Listen(ln1, h, fastpath.Options{ReadHeaderTimeout: 5 * time.Second, BufferSize: 512})
	s1 := &http.Server{Handler: h}
	go s1.Serve(fl)
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	s2 := &http.Server{Handler: h}
	go s2.Serve(ln2)
	f.Cleanup(func() { s1.Close(); s2.Close(); fl.Close() })
	for _, s := range []string{
		"GET /1k.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /style.css HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /digits.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=1-3\r\n\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /app.js HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br\r\n\r\n",
		"GET /digits.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /digits.txt HTTP/1.0\r\n\r\nGET /1k.txt HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /sub HTTP/1.1\r\nHost: a\r\n\r\nGET /digits.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /1k.txt HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /digits.txt HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\n\r\nGET /digits.txt HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET /digits.txt HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", 600) + "\r\n\r\nGET /digits.txt HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /digits.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /digits.txt HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%7e/../digits.txt?q HTTP/1.1\r\nHost: a\r\n\r\nGET /missing HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /digits.txt HTTP/1.1\r\nHost: a\r\n\r\nHEAD /sub HTTP/1.1\r\nHost: a\r\n\r\nGET /app.js HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
		"GET /nope HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\nHEAD /.env HTTP/1.1\r\nHost: a\r\n\r\nGET /digits.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=90-\r\n\r\nGET /1k.txt HTTP/1.1\r\nHost: a\r\nIf-Match: \"x\"\r\n\r\n",
		"GET /nope HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if bytes.Contains(raw, []byte("big.bin")) {
			return // 200 KiB answers only slow the fuzzer down; covered elsewhere
		}
		got := normalizeResponses(connExchange(t, fastAddrOf(ln1), raw))
		want := normalizeResponses(connExchange(t, ln2.Addr().String(), raw))
		if got != want {
			t.Fatalf("%q:\nfast path: %q\nnet/http:  %q", raw, got, want)
		}
	})
}

func fastAddrOf(ln net.Listener) string { return ln.Addr().String() }

// The error answers the fast path gives (404 and the like) equal
// net/http's with the site's headers too, and it leaves to net/http what
// is not a plain error page: the SPA's index for a navigation, the
// Fallback handler, and a site header that the error page would delete.
func TestServeFastErrorPages(t *testing.T) {
	miss := rawRequest("GET", "/missing.txt", nil)
	nav := rawRequest("GET", "/missing.txt", []string{"Accept", "text/html"})
	t.Run("site headers", func(t *testing.T) {
		h, _ := newHandler(t, nil, Options{})
		f := enginetest.Start(t, h, [][2]string{{"X-Frame-Options", "DENY"}, {"Content-Type", "text/x-site"}, {"X-Content-Type-Options", "off"}})
		f.Same(t, true, miss, nav, rawRequest("HEAD", "/.env", nil))
	})
	t.Run("site Cache-Control kept", func(t *testing.T) {
		h, _ := newHandler(t, nil, Options{})
		f := enginetest.Start(t, h, [][2]string{{"Cache-Control", "max-age=5"}, {"Vary", "Origin"}})
		unsat := rawRequest("GET", "/digits.txt", []string{"Range", "bytes=50-60"})
		failed := rawRequest("GET", "/digits.txt", []string{"If-Match", `"x"`})
		for _, got := range f.Same(t, true, miss, unsat, failed) {
			if got.Header.Get("Cache-Control") != "max-age=5" {
				t.Errorf("Cache-Control: got %q, want the site's", got.Header.Get("Cache-Control"))
			}
		}
	})
	t.Run("site field the page deletes", func(t *testing.T) {
		h, _ := newHandler(t, nil, Options{})
		f := enginetest.Start(t, h, [][2]string{{"Etag", `"site"`}})
		got, want := f.Declines(t, miss), enginetest.Do(t, f.Normal, miss)[0]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fast: %+v\nnormal: %+v", got, want)
		}
	})
	t.Run("spa", func(t *testing.T) {
		h, _ := newHandler(t, func(c *config.Static) { c.SPA = true }, Options{})
		f := enginetest.Start(t, h, nil)
		f.Declines(t, nav)                                                                  // the index page
		f.Same(t, true, miss, rawRequest("GET", "/missing.txt", []string{"Accept", "*/*"})) // a script's fetch: 404
	})
	t.Run("fallback", func(t *testing.T) {
		h, _ := newHandler(t, nil, Options{Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "app")
		})})
		f := enginetest.Start(t, h, nil)
		if got := f.Declines(t, miss); got.Body != "app" {
			t.Errorf("got %+v, want the fallback's answer", got)
		}
		f.Declines(t, rawRequest("GET", "/.env", nil))
	})
}

// A 404 (and a 412, a 416) on the fast path allocates nothing: the page
// is rendered once.
func TestServeFast404NoAllocs(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	for _, req := range []*fastpath.Request{
		{Path: "/missing.txt", Accept: "*/*"},
		{Path: "/nope/deeper/missing.html", Accept: "text/html"},
		{Path: "/.env"},
		{Path: "/digits.txt", Range: "bytes=50-60"},
		{Path: "/digits.txt", IfMatch: `"x"`},
	} {
		req.Method, req.Proto, req.ProtoMinor, req.RawPath, req.KeepAlive = "GET", "HTTP/1.1", 1, req.Path, true
		rec := fastpath.NewRecorder()
		if !rec.Serve(h, req) {
			t.Fatalf("%+v: not served", req)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if !rec.Serve(h, req) {
				t.Fatal("not served")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: got %v allocs per 404, want 0", req.Path, allocs)
		}
	}
}

// BenchmarkFast404 is a 404 for a missing file on the fast path, header
// and body composed (no socket).
func BenchmarkFast404(b *testing.B) {
	h, _ := newHandler(b, nil, Options{})
	req := &fastpath.Request{Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, Path: "/missing.txt", RawPath: "/missing.txt",
		Accept: "*/*", AcceptEncoding: "gzip, deflate, br", KeepAlive: true, Start: time.Now()}
	rec := fastpath.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if !rec.Serve(h, req) {
			b.Fatal("not served")
		}
	}
}
