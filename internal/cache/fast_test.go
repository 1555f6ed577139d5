package cache

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/fastpath"
)

// Tests of the fast path (fast.go): the same raw request goes through a
// fastpath listener (the fast path, net/http behind it for what it
// declines) and a plain net/http server in front of the same Handler, and
// the answers must agree (status, header but Date, body).

var fastSiteHeaders = [][2]string{{"X-Frame-Options", "DENY"}, {"X-Site", "s"}, {"Etag", `"site"`}}

type fastFronts struct {
	fast, normal string
	served       atomic.Int64
	declined     atomic.Int64
}

func startFastFronts(t *testing.T, h *Handler, site [][2]string) *fastFronts {
	t.Helper()
	f := &fastFronts{}
	normal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, kv := range site {
			w.Header()[kv[0]] = []string{kv[1]}
		}
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := fastpath.Listen(ln, fastpath.HandlerFunc(func(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
		w.SetDefaultHeaders(site)
		if h.ServeFast(req, w) {
			f.served.Add(1)
			return true
		}
		f.declined.Add(1)
		return false
	}), fastpath.Options{IdleTimeout: 10 * time.Second, ReadHeaderTimeout: 5 * time.Second})
	hs := &http.Server{Handler: normal}
	go hs.Serve(fl)
	t.Cleanup(func() { hs.Close(); fl.Close() })
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs2 := &http.Server{Handler: normal}
	go hs2.Serve(ln2)
	t.Cleanup(func() { hs2.Close() })
	f.fast, f.normal = fl.Addr().String(), ln2.Addr().String()
	return f
}

type fastResult struct {
	status int
	header http.Header
	body   string
	clen   int64
	closed bool
}

// rawDo sends raw requests on one connection and reads their responses.
func rawDo(t *testing.T, addr string, raws ...string) []fastResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var out []fastResult
	for _, raw := range raws {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		method, _, _ := strings.Cut(raw, " ")
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading response to %q: %v", raw, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading body of %q: %v", raw, err)
		}
		if n := len(resp.Header["Date"]); n != 1 {
			t.Errorf("%q: %d Date fields", raw, n)
		}
		resp.Header.Del("Date")
		out = append(out, fastResult{resp.StatusCode, resp.Header, string(b), resp.ContentLength, resp.Close})
	}
	return out
}

// same sends raws through both paths and fails unless the answers agree;
// wantFast says whether the fast path must have served them all.
func (f *fastFronts) same(t *testing.T, wantFast bool, raws ...string) []fastResult {
	t.Helper()
	before := f.served.Load()
	a := rawDo(t, f.fast, raws...)
	if got := f.served.Load() - before; wantFast && got != int64(len(raws)) || !wantFast && got != 0 {
		t.Errorf("fast path served %d of %d requests, want fast=%v", got, len(raws), wantFast)
	}
	b := rawDo(t, f.normal, raws...)
	for i := range a {
		if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			t.Errorf("request %q:\nfast:   %+v\nnormal: %+v", raws[i], a[i], b[i])
		}
	}
	return a
}

// declines sends raw to the fast listener and fails if the fast path served it.
func (f *fastFronts) declines(t *testing.T, raw string) fastResult {
	t.Helper()
	before := f.served.Load()
	r := rawDo(t, f.fast, raw)[0]
	if got := f.served.Load() - before; got != 0 {
		t.Errorf("fast path served %q, want it declined", raw)
	}
	return r
}

func rawGET(path, host string, extra ...string) string {
	s := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "\r\n"
}

func TestFastHitEquivalence(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, strings.Repeat("hello ", 50),
		"Cache-Control", "public, max-age=3600", "Content-Type", "text/plain",
		"Etag", `"v1"`, "Last-Modified", "Sun, 01 Mar 2026 10:00:00 GMT",
		"X-Multi", "a", "X-Multi", "b")
	h := newTestCache(t, config.Cache{}, o, clock)
	f := startFastFronts(t, h, fastSiteHeaders)
	rawDo(t, f.normal, rawGET("/p?q=1", "example.test")) // fill
	clock.Advance(7 * time.Second)

	r := f.same(t, true,
		rawGET("/p?q=1", "example.test"),
		"HEAD /p?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
		rawGET("/p?q=1", "EXAMPLE.test:80"),
		rawGET("/p?q=1", "example.test.", "Accept: */*", "User-Agent: x"),
		rawGET("/p?q=1", "example.test", `If-None-Match: "v1"`),
		rawGET("/p?q=1", "example.test", `If-None-Match: W/"v1", "v2"`),
		rawGET("/p?q=1", "example.test", `If-None-Match: "v2"`),
		rawGET("/p?q=1", "example.test", "If-Modified-Since: Sun, 01 Mar 2026 11:00:00 GMT"),
		rawGET("/p?q=1", "example.test", "If-Modified-Since: Sun, 01 Mar 2026 09:00:00 GMT"),
		"HEAD /p?q=1 HTTP/1.1\r\nHost: example.test\r\nIf-None-Match: \"v1\"\r\n\r\n",
		"GET /p?q=1 HTTP/1.0\r\nHost: example.test\r\n\r\n",
	)
	if r[0].status != 200 || r[0].header.Get("Cache-Status") != "portico; hit; ttl=3593" || r[0].header.Get("Age") != "7" ||
		r[0].header.Get("Etag") != `"v1"` || len(r[0].header["X-Multi"]) != 2 || r[0].header.Get("X-Site") != "s" {
		t.Errorf("hit: %+v", r[0])
	}
	if r[4].status != 304 || r[6].status != 200 || r[7].status != 304 || r[8].status != 200 || r[9].status != 304 {
		t.Errorf("conditionals: %d %d %d %d %d", r[4].status, r[6].status, r[7].status, r[8].status, r[9].status)
	}
	// Pipelined on one connection.
	before := f.served.Load()
	c, err := net.Dial("tcp", f.fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, rawGET("/p?q=1", "example.test")+"HEAD /p?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n"+rawGET("/p?q=1", "example.test"))
	br := bufio.NewReader(c)
	for _, m := range []string{"GET", "HEAD", "GET"} {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || (m == "GET") != (len(b) == 300) {
			t.Errorf("pipelined %s: %d, %d bytes", m, resp.StatusCode, len(b))
		}
	}
	if n := f.served.Load() - before; n != 3 {
		t.Errorf("pipelined: fast path served %d of 3", n)
	}
	// An empty If-None-Match wins over If-Modified-Since on net/http's path.
	f.same(t, true, rawGET("/p?q=1", "example.test", "If-None-Match: ", "If-Modified-Since: Sun, 01 Mar 2026 11:00:00 GMT"))
	if o.hits.Load() != 1 {
		t.Errorf("origin hits %d, want 1", o.hits.Load())
	}
}

func TestFastVary(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "enc=", "Cache-Control", "max-age=60", "Content-Type", "text/plain", "Vary", "Accept-Encoding, X-Lang")
	o.echo = "Accept-Encoding"
	h := newTestCache(t, config.Cache{}, o, clock)
	f := startFastFronts(t, h, fastSiteHeaders)
	variants := [][]string{
		{"Accept-Encoding: gzip"},
		{"Accept-Encoding: br", "X-Lang: fr"},
		{"accept-encoding:  br ", "x-lang: fr"}, // same variant, other spelling
		{},
		{"X-Lang: a", "X-Lang: b"},
	}
	for _, v := range variants {
		rawDo(t, f.normal, rawGET("/v", "example.test", v...))
	}
	fills := o.hits.Load()
	for _, v := range variants {
		r := f.same(t, true, rawGET("/v", "example.test", v...))
		if !strings.Contains(r[0].header.Get("Cache-Status"), "hit") {
			t.Errorf("%q: %+v", v, r[0])
		}
	}
	if fills != 4 || o.hits.Load() != 4 {
		t.Errorf("origin hits %d then %d, want 4", fills, o.hits.Load())
	}
	// A variant not stored: declined (a vary-miss), answered by net/http.
	if r := f.declines(t, rawGET("/v", "example.test", "Accept-Encoding: deflate")); r.body != "enc=deflate" {
		t.Errorf("new variant: %+v", r)
	}
	f.same(t, true, rawGET("/v", "example.test", "Accept-Encoding: deflate"))
}

func TestFastDeclines(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "body", "Cache-Control", "max-age=60", "Content-Type", "text/plain", "Etag", `"e"`)
	h := newTestCache(t, config.Cache{}, o, clock)
	f := startFastFronts(t, h, fastSiteHeaders)
	rawDo(t, f.normal, rawGET("/d", "example.test"))
	for _, extra := range []string{
		"Authorization: Basic dTpw", "Range: bytes=0-1", "Range: ", "If-Range: \"e\"", "If-Match: \"e\"",
		"If-Unmodified-Since: Sun, 01 Mar 2026 11:00:00 GMT", "Cache-Control: max-age=0",
		"cache-control: no-cache", "Pragma: no-cache", "Pragma: foo",
	} {
		f.declines(t, rawGET("/d", "example.test", extra))
	}
	f.declines(t, rawGET("/other", "example.test")) // miss
	f.declines(t, rawGET("/d%3f", "example.test"))  // another key
	f.declines(t, rawGET(`/d"x`, "example.test"))   // net/url re-escapes the path
	f.same(t, true, rawGET("/d", "example.test"))
	clock.Advance(61 * time.Second) // stale
	f.declines(t, rawGET("/d", "example.test"))
	f.declines(t, "POST /d HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n")

	// no-cache entries are always revalidated.
	o2 := newOrigin(clock, 200, "nc", "Cache-Control", "no-cache", "Etag", `"n"`, "Content-Type", "text/plain")
	h2 := newTestCache(t, config.Cache{}, o2, clock)
	f2 := startFastFronts(t, h2, nil)
	rawDo(t, f2.normal, rawGET("/n", "example.test"))
	f2.declines(t, rawGET("/n", "example.test"))

	// Freshness from Expires or a heuristic only: a downstream cache's
	// lifetime would depend on Date, which the fast path replaces.
	o4 := newOrigin(clock, 200, "x", "Content-Type", "text/plain", "Expires", "Sun, 01 Mar 2026 14:00:00 GMT")
	h4 := newTestCache(t, config.Cache{}, o4, clock)
	f4 := startFastFronts(t, h4, nil)
	rawDo(t, f4.normal, rawGET("/e", "example.test"))
	if r := f4.declines(t, rawGET("/e", "example.test")); !strings.Contains(r.header.Get("Cache-Status"), "hit") {
		t.Errorf("Expires entry: %+v", r)
	}
	o5 := newOrigin(clock, 200, "x", "Content-Type", "text/plain", "Cache-Control", "s-maxage=60", "Last-Modified", "Sun, 01 Feb 2026 10:00:00 GMT")
	h5 := newTestCache(t, config.Cache{}, o5, clock)
	f5 := startFastFronts(t, h5, nil)
	rawDo(t, f5.normal, rawGET("/l", "example.test"))
	if r := f5.declines(t, rawGET("/l", "example.test")); !strings.Contains(r.header.Get("Cache-Status"), "hit") {
		t.Errorf("s-maxage entry: %+v", r)
	}

	// No Content-Type: net/http sniffs one, so the fast path declines.
	o3 := newOrigin(clock, 200, "<html>x</html>", "Cache-Control", "max-age=60")
	h3 := newTestCache(t, config.Cache{}, o3, clock)
	f3 := startFastFronts(t, h3, nil)
	rawDo(t, f3.normal, rawGET("/s", "example.test"))
	f3.declines(t, rawGET("/s", "example.test"))
	f3.same(t, true, "HEAD /s HTTP/1.1\r\nHost: example.test\r\n\r\n")
}

func TestFastDeclinesRedis(t *testing.T) {
	h, err := New(config.Cache{Store: "redis://127.0.0.1:1/0"}, newOrigin(nil, 200, "x"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(t.Context())
	rec := fastpath.NewRecorder()
	req := &fastpath.Request{Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, Host: "example.test", URI: "/", RawPath: "/", Path: "/", KeepAlive: true}
	if h.serveFast(req, rec.Writer(), []byte("Host: example.test\r\n")) {
		t.Fatal("redis store served on the fast path")
	}
}

func TestFastHostsDoNotShare(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "", "Cache-Control", "max-age=60", "Content-Type", "text/plain")
	o.echo = "X-Host"
	h := newTestCache(t, config.Cache{}, o, clock)
	f := startFastFronts(t, h, nil)
	rawDo(t, f.normal, rawGET("/h", "a.test", "X-Host: a"))
	f.declines(t, rawGET("/h", "b.test", "X-Host: b")) // a miss for b: stored now
	ra := f.same(t, true, rawGET("/h", "a.test"))
	rb := f.same(t, true, rawGET("/h", "B.TEST"))
	if ra[0].body != "a" || rb[0].body != "b" {
		t.Errorf("a.test got %q, b.test got %q", ra[0].body, rb[0].body)
	}
	f.declines(t, rawGET("/h", "a.test:8080"))
}

func TestFastCountsHits(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "x", "Cache-Control", "max-age=60", "Content-Type", "text/plain")
	h := newTestCache(t, config.Cache{}, o, clock)
	f := startFastFronts(t, h, nil)
	rawDo(t, f.normal, rawGET("/c", "example.test"))
	before := h.Stats()
	rawDo(t, f.fast, rawGET("/c", "example.test"), rawGET("/c", "example.test"), "HEAD /c HTTP/1.1\r\nHost: example.test\r\n\r\n")
	after := h.Stats()
	if f.served.Load() != 3 || after.Hits-before.Hits != 3 || after.Misses != before.Misses {
		t.Errorf("served %d, hits %d -> %d, misses %d -> %d", f.served.Load(), before.Hits, after.Hits, before.Misses, after.Misses)
	}
}

func BenchmarkFastHit(b *testing.B) {
	for _, vary := range []bool{false, true} {
		b.Run(fmt.Sprintf("vary=%v", vary), func(b *testing.B) {
			hdr := []string{"Cache-Control", "public, max-age=3600", "Content-Type", "text/plain", "Etag", `"abc"`}
			if vary {
				hdr = append(hdr, "Vary", "Accept-Encoding")
			}
			h, err := New(config.Cache{}, newOrigin(nil, 200, strings.Repeat("x", 1024), hdr...), Options{})
			if err != nil {
				b.Fatal(err)
			}
			r, _ := http.NewRequest("GET", "http://bench.test/hit?x=1", nil)
			r.Header.Set("Accept-Encoding", "gzip")
			h.ServeHTTP(&discardWriter{h: make(http.Header)}, r)
			raw := []byte("Host: bench.test\r\nUser-Agent: wrk\r\nAccept-Encoding: gzip\r\nAccept: */*\r\n")
			req := &fastpath.Request{Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, Host: "bench.test",
				URI: "/hit?x=1", RawPath: "/hit", Path: "/hit", Query: "x=1", AcceptEncoding: "gzip", KeepAlive: true}
			rec := fastpath.NewRecorder()
			fh := fastpath.HandlerFunc(func(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
				return h.serveFast(req, w, raw)
			})
			if !rec.Serve(fh, req) {
				b.Fatal("not served")
			}
			b.ReportAllocs()
			b.SetBytes(1024)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec.Serve(fh, req)
			}
		})
	}
}

func TestFastSiteHeadersAnd304(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "x", "Cache-Control", "max-age=60", "Etag", `"e"`)
	h := newTestCache(t, config.Cache{}, o, clock)
	// The site's Content-Type: kept on a 200 (no sniffing), dropped from a
	// 304 by net/http, so the fast path leaves 304s to it.
	f := startFastFronts(t, h, [][2]string{{"Content-Type", "text/html"}, {"Age", "99"}, {"Cache-Status", "site"}})
	rawDo(t, f.normal, rawGET("/s", "example.test"))
	r := f.same(t, true, rawGET("/s", "example.test"), "HEAD /s HTTP/1.1\r\nHost: example.test\r\n\r\n")
	if r[0].header.Get("Content-Type") != "text/html" || r[0].header.Get("Age") != "0" || len(r[0].header["Cache-Status"]) != 1 {
		t.Errorf("site headers: %+v", r[0])
	}
	if r := f.same(t, false, rawGET("/s", "example.test", `If-None-Match: "e"`)); r[0].status != 304 {
		t.Errorf("304: %+v", r[0])
	}
}

func TestFastKeyParts(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "", "Cache-Control", "max-age=60", "Content-Type", "text/plain")
	o.echo = "X-N"
	h := newTestCache(t, config.Cache{Key: []string{"path", "query"}}, o, clock)
	f := startFastFronts(t, h, nil)
	rawDo(t, f.normal, rawGET("/k?a=1", "a.test", "X-N: 1"))
	// The host is not part of this key: another host shares the entry.
	if r := f.same(t, true, rawGET("/k?a=1", "other.test")); r[0].body != "1" {
		t.Errorf("shared entry: %+v", r[0])
	}
	f.declines(t, rawGET("/k?a=2", "a.test"))
}
