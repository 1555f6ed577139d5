package cache

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/fastpath"
)

// Tests of the fast path (fast.go): the same raw request goes through both
// engines (enginetest.Start) in front of the same Handler, and the answers
// must agree (status, header but Date, body).

var fastSiteHeaders = [][2]string{{"X-Frame-Options", "DENY"}, {"X-Site", "s"}, {"Etag", `"site"`}}

func TestFastHitEquivalence(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, strings.Repeat("hello ", 50),
		"Cache-Control", "public, max-age=3600", "Content-Type", "text/plain",
		"Etag", `"v1"`, "Last-Modified", "Sun, 01 Mar 2026 10:00:00 GMT",
		"X-Multi", "a", "X-Multi", "b")
	h := newTestCache(t, config.Cache{}, o, clock)
	f := enginetest.Start(t, h, fastSiteHeaders)
	enginetest.Do(t, f.Normal, enginetest.GET("/p?q=1", "example.test")) // fill
	clock.Advance(7 * time.Second)

	r := f.Same(t, true,
		enginetest.GET("/p?q=1", "example.test"),
		"HEAD /p?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
		enginetest.GET("/p?q=1", "EXAMPLE.test:80"),
		enginetest.GET("/p?q=1", "example.test.", "Accept: */*", "User-Agent: x"),
		enginetest.GET("/p?q=1", "example.test", `If-None-Match: "v1"`),
		enginetest.GET("/p?q=1", "example.test", `If-None-Match: W/"v1", "v2"`),
		enginetest.GET("/p?q=1", "example.test", `If-None-Match: "v2"`),
		enginetest.GET("/p?q=1", "example.test", "If-Modified-Since: Sun, 01 Mar 2026 11:00:00 GMT"),
		enginetest.GET("/p?q=1", "example.test", "If-Modified-Since: Sun, 01 Mar 2026 09:00:00 GMT"),
		"HEAD /p?q=1 HTTP/1.1\r\nHost: example.test\r\nIf-None-Match: \"v1\"\r\n\r\n",
		"GET /p?q=1 HTTP/1.0\r\nHost: example.test\r\n\r\n",
	)
	if r[0].Status != 200 || r[0].Header.Get("Cache-Status") != "portico; hit; ttl=3593" || r[0].Header.Get("Age") != "7" ||
		r[0].Header.Get("Etag") != `"v1"` || len(r[0].Header["X-Multi"]) != 2 || r[0].Header.Get("X-Site") != "s" {
		t.Errorf("hit: %+v", r[0])
	}
	if r[4].Status != 304 || r[6].Status != 200 || r[7].Status != 304 || r[8].Status != 200 || r[9].Status != 304 {
		t.Errorf("conditionals: %d %d %d %d %d", r[4].Status, r[6].Status, r[7].Status, r[8].Status, r[9].Status)
	}
	// Pipelined on one connection.
	before := f.Served.Load()
	c, err := net.Dial("tcp", f.Fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, enginetest.GET("/p?q=1", "example.test")+"HEAD /p?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n"+enginetest.GET("/p?q=1", "example.test"))
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
	if n := f.Served.Load() - before; n != 3 {
		t.Errorf("pipelined: fast path served %d of 3", n)
	}
	// An empty If-None-Match wins over If-Modified-Since on net/http's path.
	f.Same(t, true, enginetest.GET("/p?q=1", "example.test", "If-None-Match: ", "If-Modified-Since: Sun, 01 Mar 2026 11:00:00 GMT"))
	if o.hits.Load() != 1 {
		t.Errorf("origin hits %d, want 1", o.hits.Load())
	}
}

func TestFastVary(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "enc=", "Cache-Control", "max-age=60", "Content-Type", "text/plain", "Vary", "Accept-Encoding, X-Lang")
	o.echo = "Accept-Encoding"
	h := newTestCache(t, config.Cache{}, o, clock)
	f := enginetest.Start(t, h, fastSiteHeaders)
	variants := [][]string{
		{"Accept-Encoding: gzip"},
		{"Accept-Encoding: br", "X-Lang: fr"},
		{"accept-encoding:  br ", "x-lang: fr"}, // same variant, other spelling
		{},
		{"X-Lang: a", "X-Lang: b"},
	}
	for _, v := range variants {
		enginetest.Do(t, f.Normal, enginetest.GET("/v", "example.test", v...))
	}
	fills := o.hits.Load()
	for _, v := range variants {
		r := f.Same(t, true, enginetest.GET("/v", "example.test", v...))
		if !strings.Contains(r[0].Header.Get("Cache-Status"), "hit") {
			t.Errorf("%q: %+v", v, r[0])
		}
	}
	if fills != 4 || o.hits.Load() != 4 {
		t.Errorf("origin hits %d then %d, want 4", fills, o.hits.Load())
	}
	// A variant not stored: declined (a vary-miss), answered by net/http.
	if r := f.Declines(t, enginetest.GET("/v", "example.test", "Accept-Encoding: deflate")); r.Body != "enc=deflate" {
		t.Errorf("new variant: %+v", r)
	}
	f.Same(t, true, enginetest.GET("/v", "example.test", "Accept-Encoding: deflate"))
}

func TestFastDeclines(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "body", "Cache-Control", "max-age=60", "Content-Type", "text/plain", "Etag", `"e"`)
	h := newTestCache(t, config.Cache{}, o, clock)
	f := enginetest.Start(t, h, fastSiteHeaders)
	enginetest.Do(t, f.Normal, enginetest.GET("/d", "example.test"))
	for _, extra := range []string{
		"Authorization: Basic dTpw", "Range: bytes=0-1", "Range: ", "If-Range: \"e\"", "If-Match: \"e\"",
		"If-Unmodified-Since: Sun, 01 Mar 2026 11:00:00 GMT", "Cache-Control: max-age=0",
		"cache-control: no-cache", "Pragma: no-cache", "Pragma: foo",
	} {
		f.Declines(t, enginetest.GET("/d", "example.test", extra))
	}
	f.Declines(t, enginetest.GET("/other", "example.test")) // miss
	f.Declines(t, enginetest.GET("/d%3f", "example.test"))  // another key
	f.Declines(t, enginetest.GET(`/d"x`, "example.test"))   // net/url re-escapes the path
	f.Same(t, true, enginetest.GET("/d", "example.test"))
	clock.Advance(61 * time.Second) // stale
	f.Declines(t, enginetest.GET("/d", "example.test"))
	f.Declines(t, "POST /d HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n")

	// no-cache entries are always revalidated.
	o2 := newOrigin(clock, 200, "nc", "Cache-Control", "no-cache", "Etag", `"n"`, "Content-Type", "text/plain")
	h2 := newTestCache(t, config.Cache{}, o2, clock)
	f2 := enginetest.Start(t, h2, nil)
	enginetest.Do(t, f2.Normal, enginetest.GET("/n", "example.test"))
	f2.Declines(t, enginetest.GET("/n", "example.test"))

	// Freshness from Expires or a heuristic only: a downstream cache's
	// lifetime would depend on Date, which the fast path replaces.
	o4 := newOrigin(clock, 200, "x", "Content-Type", "text/plain", "Expires", "Sun, 01 Mar 2026 14:00:00 GMT")
	h4 := newTestCache(t, config.Cache{}, o4, clock)
	f4 := enginetest.Start(t, h4, nil)
	enginetest.Do(t, f4.Normal, enginetest.GET("/e", "example.test"))
	if r := f4.Declines(t, enginetest.GET("/e", "example.test")); !strings.Contains(r.Header.Get("Cache-Status"), "hit") {
		t.Errorf("Expires entry: %+v", r)
	}
	o5 := newOrigin(clock, 200, "x", "Content-Type", "text/plain", "Cache-Control", "s-maxage=60", "Last-Modified", "Sun, 01 Feb 2026 10:00:00 GMT")
	h5 := newTestCache(t, config.Cache{}, o5, clock)
	f5 := enginetest.Start(t, h5, nil)
	enginetest.Do(t, f5.Normal, enginetest.GET("/l", "example.test"))
	if r := f5.Declines(t, enginetest.GET("/l", "example.test")); !strings.Contains(r.Header.Get("Cache-Status"), "hit") {
		t.Errorf("s-maxage entry: %+v", r)
	}

	// No Content-Type: net/http sniffs one, so the fast path declines.
	o3 := newOrigin(clock, 200, "<html>x</html>", "Cache-Control", "max-age=60")
	h3 := newTestCache(t, config.Cache{}, o3, clock)
	f3 := enginetest.Start(t, h3, nil)
	enginetest.Do(t, f3.Normal, enginetest.GET("/s", "example.test"))
	f3.Declines(t, enginetest.GET("/s", "example.test"))
	f3.Same(t, true, "HEAD /s HTTP/1.1\r\nHost: example.test\r\n\r\n")
}

func TestFastDeclinesRedis(t *testing.T) {
	h, err := New(filled(config.Cache{Store: "redis://127.0.0.1:1/0"}), newOrigin(nil, 200, "x"), Options{})
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
	f := enginetest.Start(t, h, nil)
	enginetest.Do(t, f.Normal, enginetest.GET("/h", "a.test", "X-Host: a"))
	f.Declines(t, enginetest.GET("/h", "b.test", "X-Host: b")) // a miss for b: stored now
	ra := f.Same(t, true, enginetest.GET("/h", "a.test"))
	rb := f.Same(t, true, enginetest.GET("/h", "B.TEST"))
	if ra[0].Body != "a" || rb[0].Body != "b" {
		t.Errorf("a.test got %q, b.test got %q", ra[0].Body, rb[0].Body)
	}
	f.Declines(t, enginetest.GET("/h", "a.test:8080"))
}

func TestFastCountsHits(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "x", "Cache-Control", "max-age=60", "Content-Type", "text/plain")
	h := newTestCache(t, config.Cache{}, o, clock)
	f := enginetest.Start(t, h, nil)
	enginetest.Do(t, f.Normal, enginetest.GET("/c", "example.test"))
	before := h.Stats()
	enginetest.Do(t, f.Fast, enginetest.GET("/c", "example.test"), enginetest.GET("/c", "example.test"), "HEAD /c HTTP/1.1\r\nHost: example.test\r\n\r\n")
	after := h.Stats()
	if f.Served.Load() != 3 || after.Hits-before.Hits != 3 || after.Misses != before.Misses {
		t.Errorf("served %d, hits %d -> %d, misses %d -> %d", f.Served.Load(), before.Hits, after.Hits, before.Misses, after.Misses)
	}
}

func BenchmarkFastHit(b *testing.B) {
	for _, vary := range []bool{false, true} {
		b.Run(fmt.Sprintf("vary=%v", vary), func(b *testing.B) {
			hdr := []string{"Cache-Control", "public, max-age=3600", "Content-Type", "text/plain", "Etag", `"abc"`}
			if vary {
				hdr = append(hdr, "Vary", "Accept-Encoding")
			}
			h, err := New(filled(config.Cache{}), newOrigin(nil, 200, strings.Repeat("x", 1024), hdr...), Options{})
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
	f := enginetest.Start(t, h, [][2]string{{"Content-Type", "text/html"}, {"Age", "99"}, {"Cache-Status", "site"}})
	enginetest.Do(t, f.Normal, enginetest.GET("/s", "example.test"))
	r := f.Same(t, true, enginetest.GET("/s", "example.test"), "HEAD /s HTTP/1.1\r\nHost: example.test\r\n\r\n")
	if r[0].Header.Get("Content-Type") != "text/html" || r[0].Header.Get("Age") != "0" || len(r[0].Header["Cache-Status"]) != 1 {
		t.Errorf("site headers: %+v", r[0])
	}
	if r := f.Same(t, false, enginetest.GET("/s", "example.test", `If-None-Match: "e"`)); r[0].Status != 304 {
		t.Errorf("304: %+v", r[0])
	}
}

func TestFastKeyParts(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "", "Cache-Control", "max-age=60", "Content-Type", "text/plain")
	o.echo = "X-N"
	h := newTestCache(t, config.Cache{Key: []string{"path", "query"}}, o, clock)
	f := enginetest.Start(t, h, nil)
	enginetest.Do(t, f.Normal, enginetest.GET("/k?a=1", "a.test", "X-N: 1"))
	// The host is not part of this key: another host shares the entry.
	if r := f.Same(t, true, enginetest.GET("/k?a=1", "other.test")); r[0].Body != "1" {
		t.Errorf("shared entry: %+v", r[0])
	}
	f.Declines(t, enginetest.GET("/k?a=2", "a.test"))
}
