package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/fastpath"
)

// Tests of the fast path (fast.go): each sends the same raw request through
// a fastpath listener (the fast path) and a plain net/http server (the
// normal path) in front of the same Handler, and compares what the
// upstream received and what the client got back.

// siteHeaders plays the site's configured headers on both paths.
var siteHeaders = [][2]string{{"X-Frame-Options", "DENY"}, {"X-Site", "s"}}

// recorder is an upstream that records what it receives.
type recorded struct {
	uri, host string
	header    http.Header
}

type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (r *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.RequestURI, req.Host, req.Header.Clone()})
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := r.reqs
	r.reqs = nil
	return x
}

// sameUpstream runs raw through both engines (one request each) and
// compares what the upstream received.
func sameUpstream(t *testing.T, f *enginetest.Fronts, rec *recorder, wantFast bool, raw string) recorded {
	t.Helper()
	rec.take()
	f.Same(t, wantFast, raw)
	got := rec.take()
	if len(got) != 2 {
		t.Fatalf("upstream got %d requests, want 2", len(got))
	}
	a, b := got[0], got[1]
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("upstream received for %q:\nfast:   %+v\nnormal: %+v", raw, a, b)
	}
	return a
}

func echoUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s", r.Method, r.RequestURI)
	})
}

func TestFastForwardingHeaders(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, rec.wrap(echoUpstream()))
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprint("trusted=", trusted), func(t *testing.T) {
			var opts Options
			if trusted {
				opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, opts)
			f := enginetest.Start(t, h, siteHeaders)
			for _, raw := range []string{
				"GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n",
				"GET /a HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8, 9.9.9.9\r\n" +
					"X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4\r\nVia: 1.0 other\r\n\r\n",
				"GET /a HTTP/1.1\r\nhost: example.test:8080\r\nuser-agent: ua/1\r\naccept: */*\r\ncookie: a=1\r\ncookie: b=2\r\n" +
					"x-custom_name: v  \r\nX-EMPTY:\r\nAuthorization: Basic eDp5\r\nContent-Length: 0\r\n" +
					"x-a.b~c: 1\r\nX-UTF8: h\xc3\xa9llo\r\nx-tab:\ta\tb\t\r\n\r\n",
				"GET /a HTTP/1.1\r\nHost: example.test\r\nUser-Agent:\r\nX-Forwarded-For:\r\n\r\n",
				"HEAD /a HTTP/1.1\r\nHost: example.test\r\nProxy: http://evil:1\r\n\r\n",
			} {
				got := sameUpstream(t, f, rec, true, raw)
				if got.header.Get("Proxy") != "" {
					t.Errorf("Proxy forwarded: %v", got.header)
				}
			}
		})
	}
}

func TestFastHopByHop(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Bar, Keep-Alive")
		h.Set("X-Bar", "hop")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "h2c")
		h.Set("X-Kept", "yes")
		h.Add("Via", "1.1 app")
		h.Set("X-Frame-Options", "SAMEORIGIN") // a site header too
		io.WriteString(w, "ok")
	})))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	f := enginetest.Start(t, h, siteHeaders)
	for _, raw := range []string{
		"GET /h HTTP/1.1\r\nHost: a\r\nConnection: X-Forwarded-For, X-Foo, Via, keep-alive\r\nX-Foo: 1\r\nX-Forwarded-For: 1.1.1.1\r\nVia: 1.0 x\r\n" +
			"Keep-Alive: 300\r\nProxy-Authorization: Basic x\r\nTe: trailers, deflate\r\nTrailer: X\r\n\r\n",
		"GET /h HTTP/1.1\r\nHost: a\r\nConnection: User-Agent, Accept\r\nUser-Agent: u\r\nAccept: text/html\r\n\r\n",
		"GET /h HTTP/1.1\r\nHost: a\r\nTE: gzip\r\n\r\n",
	} {
		got := sameUpstream(t, f, rec, true, raw)
		for _, k := range []string{"X-Foo", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Trailer", "Connection"} {
			if _, ok := got.header[k]; ok {
				t.Errorf("%s forwarded for %q", k, raw)
			}
		}
	}
	res := f.Same(t, true, "GET /h HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, k := range []string{"X-Bar", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Connection"} {
		if _, ok := res[0].Header[k]; ok {
			t.Errorf("response hop-by-hop %s kept: %v", k, res[0].Header)
		}
	}
	if v := res[0].Header.Get("Via"); v != "1.1 app, 1.1 portico" {
		t.Errorf("Via = %q", v)
	}
}

func TestFastEscapedPaths(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, rec.wrap(echoUpstream()))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	for _, target := range []string{"/a%2Fb?x=%3F&y;z", "/a%41b", "/a?", "/a??b", "/%7Euser/x%23y", "/a/../b", "//x//y", "/q?a=%zz&b=<>"} {
		got := sameUpstream(t, f, rec, true, "GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if got.uri != target {
			t.Errorf("upstream got %q, want %q", got.uri, target)
		}
	}
	// Paths net/url re-escapes go to net/http.
	sameUpstream(t, f, rec, false, "GET /a|b HTTP/1.1\r\nHost: a\r\n\r\n")
}

func TestFastResponses(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 10000)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/chunked":
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "part one;")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/trailers":
			h.Set("Trailer", "X-Sum, x-other")
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			h.Set("X-Sum", "42")
			h.Set("X-Other", "o")
		case "/sniff":
			h["Content-Type"] = nil
			io.WriteString(w, "<html><body>hi</body></html>")
		case "/sniffchunked":
			h["Content-Type"] = nil
			io.WriteString(w, "%PDF-1.4 x")
			w.(http.Flusher).Flush()
			io.WriteString(w, "more")
		case "/304":
			h.Set("ETag", `"x"`)
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(304)
		case "/204":
			w.WriteHeader(204)
		case "/big":
			h.Set("Content-Type", "application/octet-stream")
			io.WriteString(w, big)
		case "/empty":
			h.Set("Content-Length", "0")
		case "/gz":
			h["Content-Type"] = nil
			h.Set("Content-Encoding", "gzip")
			io.WriteString(w, "not really gzip")
		case "/status":
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(599)
			io.WriteString(w, "odd")
		case "/multi":
			h.Add("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "m")
		default:
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		}
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	// Not "/sniffchunked": for a body of unknown length, whether net/http
	// sniffs depends on a race in ReverseProxy's flushing (the fast path
	// never sniffs it).
	for _, p := range []string{"/", "/chunked", "/trailers", "/sniff", "/304", "/204", "/big", "/empty", "/gz", "/multi", "/status"} {
		for _, m := range []string{"GET", "HEAD"} {
			res := f.Same(t, true, m+" "+p+" HTTP/1.1\r\nHost: a\r\n\r\n", m+" "+p+" HTTP/1.1\r\nHost: a\r\n\r\n")
			if m == "GET" && p == "/chunked" && res[0].Body != "part one;part two" {
				t.Errorf("chunked body %q", res[0].Body)
			}
			if m == "GET" && p == "/trailers" && res[0].Trailer.Get("X-Sum") != "42" {
				t.Errorf("trailer %v", res[0].Trailer)
			}
		}
	}
	// Connection: close from the client.
	res := f.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !res[0].Closed {
		t.Error("Connection: close not honoured")
	}
	// An error page, the same on both paths (site headers, Accept).
	dead := newHandler(t, config.Proxy{Upstreams: []string{"http://" + deadPort(t)}}, Options{})
	fd := enginetest.Start(t, dead, siteHeaders)
	fd.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\n")
	fd.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
	fd.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nConnection: accept\r\n\r\n")
}

// rawUpstream answers every request on a connection with the responses of
// respond, written as they are; it counts connections.
type rawUpstream struct {
	addr  string
	conns atomic.Int64
}

func startRawUpstream(t *testing.T, respond func(n int, req *http.Request) (resp string, close bool)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{addr: ln.Addr().String()}
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					resp, cl := respond(int(n.Add(1)), req)
					if _, err := io.WriteString(c, resp); err != nil || cl {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return u
}

func TestFastRawUpstreams(t *testing.T) {
	cases := map[string]struct {
		resp  string
		close bool
	}{
		"eof":        {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", true},
		"eof10":      {"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold", true},
		"te10":       {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", true},
		"lower":      {"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-lower-CASE: 1\r\nX-Empty:\r\ncontent-type: text/html\r\n\r\nhi", false},
		"ka10":       {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi", false},
		"close":      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", true},
		"lf":         {"HTTP/1.1 200 OK\nContent-Length: 2\nX-A:  b \n\nhi", false},
		"103":        {"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false},
		"dupcl":      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false},
		"ext":        {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", false},
		"clte":       {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
		"noreason":   {"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", false},
		"badstatus":  {"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx", true},
		"badcl":      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", true},
		"garbage":    {"SSH-2.0-OpenSSH\r\n\r\n", true},
		"gzipte":     {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", true},
		"101":        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", true},
		"connhdrs":   {"HTTP/1.1 200 OK\r\nConnection: content-type, x-a\r\nContent-Type: text/plain\r\nX-A: 1\r\nContent-Length: 5\r\n\r\n<b>x!", false},
		"shortbody":  {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true},
		"emptychunk": {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	}
	up := startRawUpstream(t, func(n int, req *http.Request) (string, bool) {
		c := cases[strings.TrimPrefix(req.URL.Path, "/")]
		return c.resp, c.close
	})
	h := newHandler(t, config.Proxy{Upstreams: []string{"http://" + up.addr}, Retries: -1}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	for name := range cases {
		switch name {
		case "shortbody", "emptychunk", "103":
			continue // below
		}
		f.Same(t, true, "GET /"+name+" HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	// Chunked with an empty body: net/http may answer it chunked or with
	// Content-Length: 0 (a race in ReverseProxy's flushing); both say
	// "empty".
	res := enginetest.Do(t, f.Fast, "GET /emptychunk HTTP/1.1\r\nHost: a\r\n\r\n")
	if res[0].Status != 200 || res[0].Body != "" {
		t.Errorf("emptychunk: %+v", res[0])
	}
	// 103: relayed at once, with the site's headers, then the final
	// response. (The interim responses of both paths are compared; on the
	// net/http path ReverseProxy then drops the site's headers from the
	// final response, which the fast path keeps. A 103 carries no Date,
	// so enginetest.Do, which wants one, does not read it.)
	before := f.Served.Load()
	if a, b := interimHead(t, f.Fast), interimHead(t, f.Normal); a != b {
		t.Errorf("103:\nfast:   %q\nnormal: %q", a, b)
	}
	if n := f.Served.Load() - before; n != 1 {
		t.Errorf("fast path served %d of 1 103 requests", n)
	}
	c103, err := net.Dial("tcp", f.Fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c103.Close()
	c103.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c103, "GET /103 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	out, _ := io.ReadAll(c103)
	i103 := bytes.Index(out, []byte("HTTP/1.1 103 Early Hints\r\n"))
	i200 := bytes.Index(out, []byte("HTTP/1.1 200 OK\r\n"))
	if i103 != 0 || i200 < 0 || !bytes.HasSuffix(out, []byte("\r\n\r\nx")) ||
		!bytes.Contains(out[:i200], []byte("Link: </a>\r\n")) || !bytes.Contains(out[i200:], []byte("X-Frame-Options: DENY\r\n")) {
		t.Errorf("103 then 200:\n%s", out)
	}
	// A body cut short: the client's connection is closed, no hang.
	c, err := net.Dial("tcp", f.Fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /shortbody HTTP/1.1\r\nHost: a\r\n\r\n")
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("short body: %v (read %q)", err, all)
	}
}

// interimHead sends GET /103 to addr and returns the interim response's
// head.
func interimHead(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /103 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	out, _ := io.ReadAll(c)
	head, _, ok := bytes.Cut(out, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no interim response from %s: %q", addr, out)
	}
	return string(head)
}

func TestFastEventStreamHasNoBodyTimeout(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(400 * time.Millisecond)
		io.WriteString(w, "data: 2\n\n")
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, ReadTimeout: ms(150)}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	res := f.Same(t, true, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
	if res[0].Body != "data: 1\n\ndata: 2\n\n" {
		t.Errorf("event stream cut: %q", res[0].Body)
	}
	// The first event reaches the client before the second is sent.
	c, err := net.Dial("tcp", f.Fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("data: 1")) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("first event not streamed: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
}

func TestFastKeepAliveReuse(t *testing.T) {
	up := startUpstream(t, named("a"))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	var raws []string
	for range 20 {
		raws = append(raws, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	before := f.Served.Load()
	enginetest.Do(t, f.Fast, raws...)
	enginetest.Do(t, f.Fast, raws...)
	if n := f.Served.Load() - before; n != 40 {
		t.Errorf("fast path served %d of 40", n)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections for 40 sequential requests, want 1", n)
	}
}

func TestFastUpstreamClosesKeepAlive(t *testing.T) {
	// The upstream closes idle connections after 50ms: the next request on
	// a pooled connection goes to a new one, with no failure counted.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	srv := &http.Server{Handler: named("a"), IdleTimeout: 50 * time.Millisecond,
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{Upstreams: []string{"http://" + ln.Addr().String()}, MaxFails: 1}, Options{Logger: log})
	f := enginetest.Start(t, h, siteHeaders)
	for range 3 {
		res := f.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if res[0].Status != 200 {
			t.Fatalf("status %d", res[0].Status)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "upstream down") || strings.Contains(logs.String(), "proxy error") {
		t.Errorf("a closed idle connection counted as a failure:\n%s", logs)
	}
	// Connection: close from the upstream on every response.
	up2 := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	h2 := newHandler(t, config.Proxy{Upstreams: []string{up2.URL}}, Options{})
	f2 := enginetest.Start(t, h2, siteHeaders)
	f2.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
}

func TestFastRetryAndFail(t *testing.T) {
	a := startUpstream(t, named("a"))
	b := startUpstream(t, named("b"))
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL, b.URL}, FailTimeout: config.Duration(time.Minute)}, Options{Logger: log})
	f := enginetest.Start(t, h, siteHeaders)
	// Warm both pools.
	res := enginetest.Do(t, f.Fast, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if res[0].Body+res[1].Body != "ab" && res[0].Body+res[1].Body != "ba" {
		t.Fatalf("round robin: %q %q", res[0].Body, res[1].Body)
	}
	a.Kill()
	for i := range 4 {
		res := enginetest.Do(t, f.Fast, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if res[0].Status != 200 || res[0].Body != "b" {
			t.Fatalf("request %d after a died: %+v", i, res[0])
		}
	}
	if !strings.Contains(logs.String(), "upstream down") {
		t.Errorf("a not marked down:\n%s", logs)
	}
	b.Kill()
	res = f.Same(t, true, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
	if res[0].Status != 502 {
		t.Errorf("no upstream left: status %d", res[0].Status)
	}
}

func TestFastRetryOn503(t *testing.T) {
	a := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		io.WriteString(w, "busy")
	}))
	b := startUpstream(t, named("b"))
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL, b.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	for range 4 {
		res := enginetest.Do(t, f.Fast, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if res[0].Status != 200 || res[0].Body != "b" {
			t.Fatalf("503 not retried: %+v", res[0])
		}
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("the 503 upstream's connection was not kept: %d connections", n)
	}
}

func TestFastLeastConnTracksActive(t *testing.T) {
	a := startUpstream(t, named("a"))
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL}, Balance: "least_conn"}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	f.Same(t, true, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if n := h.pool.ups[0].active.Load(); n != 0 {
		t.Errorf("active = %d after the request", n)
	}
}

func TestFastUnixUpstream(t *testing.T) {
	ln, err := net.Listen("unix", t.TempDir()+"/u.sock")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	up := serveUpstream(t, ln, rec.wrap(named("unix")))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, Host: "upstream"}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	sameUpstream(t, f, rec, true, "GET /u HTTP/1.1\r\nHost: a\r\n\r\n")
}

func TestFastDeclines(t *testing.T) {
	up := startUpstream(t, named("a"))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	f.Same(t, false, "GET / HTTP/1.0\r\nHost: a\r\n\r\n")
	f.Same(t, false, "GET /sse HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n")
	f.Same(t, false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
	// An https upstream: no fast path at all.
	hs := newHandler(t, config.Proxy{Upstreams: []string{"https://127.0.0.1:1"}}, Options{})
	if hs.fast != nil {
		t.Error("fast path with an https upstream")
	}
	// The Recorder has no raw header: declined.
	r := fastpath.NewRecorder()
	if r.Serve(h, &fastpath.Request{Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, URI: "/", RawPath: "/", Path: "/", Host: "a", RemoteAddr: "127.0.0.1:1"}) {
		t.Error("served a request without its raw header")
	}
}

func TestFastPoolBoundsAndClose(t *testing.T) {
	up := startUpstream(t, named("a"))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enginetest.Do(t, f.Fast, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		}()
	}
	wg.Wait()
	p := h.fast.pools[0]
	p.mu.Lock()
	n := len(p.idle)
	p.mu.Unlock()
	if n < 1 || n > 8 {
		t.Errorf("%d idle connections", n)
	}
	p.closeIdle(true)
	p.mu.Lock()
	n = len(p.idle)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d idle connections after close", n)
	}
}

// FuzzParseResponseHead holds the parser to Go's client: whatever it
// accepts, http.ReadResponse accepts with the same status and framing.
func FuzzParseResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
		"HTTP/1.1 200\nContent-Length: 1\n\nx",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
		"HTTP/1.1 999 x\r\n\r\n",
		"HTTP/1.1 099 x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
		"HTTP/1.1  200  OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h respHead
		n, err := parseResponseHead(data, &h)
		if err != nil || n == 0 {
			return
		}
		if n > len(data) {
			t.Fatalf("n = %d > %d", n, len(data))
		}
		for _, fl := range h.fields {
			if fl.ns > fl.ne || fl.ne > fl.vs || fl.vs > fl.ve || int(fl.ve) > n {
				t.Fatalf("bad field offsets %+v", fl)
			}
		}
		resp, gerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data[:n])), &http.Request{Method: "GET"})
		if gerr != nil {
			// Go refuses some heads we take: only a few kinds, checked here.
			if strings.Contains(gerr.Error(), "malformed HTTP version") || strings.Contains(gerr.Error(), "invalid") {
				t.Fatalf("accepted a head Go refuses (%v): %q", gerr, data[:n])
			}
			return
		}
		if resp.StatusCode != h.status {
			t.Fatalf("status %d, Go %d: %q", h.status, resp.StatusCode, data[:n])
		}
		if h.chunked != slices.Contains(resp.TransferEncoding, "chunked") {
			t.Fatalf("chunked %v, Go %v: %q", h.chunked, resp.TransferEncoding, data[:n])
		}
		if h.clen >= 0 && h.status != 304 && h.status != 204 && h.status >= 200 {
			if cl := resp.Header.Get("Content-Length"); cl != strconv.FormatInt(h.clen, 10) {
				t.Fatalf("length %d, Go %q: %q", h.clen, cl, data[:n])
			}
		}
		for _, fl := range h.fields {
			name := textproto.CanonicalMIMEHeaderKey(string(data[fl.ns:fl.ne]))
			if _, ok := resp.Header[name]; !ok && name != "Transfer-Encoding" && name != "Content-Length" && name != "Connection" {
				t.Fatalf("field %q missing in Go's header: %q", name, data[:n])
			}
		}
	})
}

// BenchmarkFastProxy measures a keep-alive GET through the fast path to a
// raw upstream (1 KiB body); the client and upstream allocate nothing per
// request, so allocs/op are the fast path's.
func BenchmarkFastProxy(b *testing.B) {
	body := strings.Repeat("x", 1024)
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n" + body
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer uln.Close()
	go func() {
		for {
			c, err := uln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
						if _, err := io.WriteString(c, resp); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	cfg := config.Proxy{Upstreams: []string{"http://" + uln.Addr().String()}}
	cfg.SetDefaults()
	h, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(b.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	fl := fastpath.Listen(ln, h, fastpath.Options{})
	defer fl.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench?x=1 HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 8192)
	readOne := func() {
		got := 0
		for {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
			if i := bytes.Index(buf[:got], []byte("\r\n\r\n")); i >= 0 && got-i-4 >= 1024 {
				return
			}
		}
	}
	c.Write(req)
	readOne()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.Write(req)
		readOne()
	}
}

func TestFastReadTimeoutIs504(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, ReadTimeout: ms(100), Retries: -1}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	res := f.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if res[0].Status != 504 {
		t.Errorf("status %d, want 504", res[0].Status)
	}
}

func TestFastActiveHealthOutOfRotation(t *testing.T) {
	a := startUpstream(t, named("a"))
	b := startUpstream(t, named("b"))
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL, b.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	h.pool.ups[0].activeDown.Store(true)
	for range 4 {
		if res := enginetest.Do(t, f.Fast, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); res[0].Body != "b" {
			t.Fatalf("served by %q while a is down by health checks", res[0].Body)
		}
	}
	if n := f.Served.Load(); n != 4 {
		t.Errorf("fast path served %d of 4", n)
	}
}

func TestFastSlowUpstreamPastWriteTimeout(t *testing.T) {
	// The engine's write deadlines count from its clock; an answer that
	// comes after write_timeout must still go out.
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	}))
	trickle := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		for _, b := range []string{"a", "b", "c"} {
			io.WriteString(w, b)
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond)
		}
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := fastpath.Listen(ln, h, fastpath.Options{WriteTimeout: 100 * time.Millisecond})
	ht := newHandler(t, config.Proxy{Upstreams: []string{trickle.URL}}, Options{})
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl2 := fastpath.Listen(ln2, ht, fastpath.Options{WriteTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { fl2.Close() })
	if res := enginetest.Do(t, fl2.Addr().String(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); res[0].Body != "abc" {
		t.Fatalf("trickled body: %+v", res[0])
	}
	t.Cleanup(func() { fl.Close() })
	for range 2 {
		res := enginetest.Do(t, fl.Addr().String(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if res[0].Body != "late" || res[1].Body != "late" {
			t.Fatalf("%+v", res)
		}
	}
}

func TestFastClientGoneCancelsUpstream(t *testing.T) {
	cancelled := make(chan time.Duration, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/poll" {
			return
		}
		start := time.Now()
		select {
		case <-r.Context().Done():
			cancelled <- time.Since(start)
		case <-time.After(5 * time.Second):
			cancelled <- -1
		}
	}))
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{Logger: log})
	f := enginetest.Start(t, h, siteHeaders)
	c, err := net.Dial("tcp", f.Fast)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /poll HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	c.Close()
	if d := <-cancelled; d < 0 || d > 2*time.Second {
		t.Errorf("upstream request not abandoned after the client left (%v)", d)
	}
	time.Sleep(50 * time.Millisecond)
	if f.Served.Load() != 1 {
		t.Errorf("fast path served %d", f.Served.Load())
	}
	if s := logs.String(); strings.Contains(s, "upstream down") || strings.Contains(s, "proxy error") {
		t.Errorf("the upstream was blamed:\n%s", s)
	}
	// The upstream is still in rotation and its pool works.
	if res := enginetest.Do(t, f.Fast, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"); res[0].Status != 200 {
		t.Errorf("after: %+v", res[0])
	}
}

func TestFastUpstreamSlowerThanClientPoll(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(clientPoll + 300*time.Millisecond)
		io.WriteString(w, "slow")
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	f := enginetest.Start(t, h, siteHeaders)
	if res := enginetest.Do(t, f.Fast, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); res[0].Status != 200 || res[0].Body != "slow" {
		t.Errorf("%+v", res[0])
	}
}

func TestFastClientGoneMidStream(t *testing.T) {
	cancelled := make(chan time.Duration, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		start := time.Now()
		select {
		case <-r.Context().Done():
			cancelled <- time.Since(start)
		case <-time.After(5 * time.Second):
			cancelled <- -1
		}
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := fastpath.Listen(ln, h, fastpath.Options{})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := c.Read(buf); err != nil || !bytes.Contains(buf[:n], []byte("data: 1")) {
		t.Fatalf("first event: %v %q", err, buf[:n])
	}
	c.Close()
	if d := <-cancelled; d < 0 || d > 2500*time.Millisecond {
		t.Errorf("stream not abandoned after the client left (%v)", d)
	}
	// Shutdown does not wait for a silent stream whose client is cut.
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
	c2.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c2.Read(buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	fl.Shutdown(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with a silent stream", d)
	}
	if d := <-cancelled; d < 0 {
		t.Error("the second stream's upstream request was not abandoned")
	}
}

func TestFastHostModes(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, rec.wrap(named("a")))
	for _, mode := range []string{"client", "upstream", "backend.internal"} {
		h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, Host: mode}, Options{})
		f := enginetest.Start(t, h, siteHeaders)
		got := sameUpstream(t, f, rec, true, "GET / HTTP/1.1\r\nHost: Example.test:8080\r\n\r\n")
		want := map[string]string{"client": "Example.test:8080", "upstream": up.Addr, "backend.internal": "backend.internal"}[mode]
		if got.host != want {
			t.Errorf("host %s: upstream got Host %q, want %q", mode, got.host, want)
		}
	}
}

func TestFastSiteContentType(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		if r.URL.Path == "/typed" {
			w.Header().Set("Content-Type", "text/plain")
		}
		io.WriteString(w, "<html>x</html>")
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	f := enginetest.Start(t, h, [][2]string{{"Content-Type", "text/x-site"}, {"Via", "1.0 site"}})
	f.Same(t, true, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /typed HTTP/1.1\r\nHost: a\r\n\r\n")
}

func TestFastIdleConnChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	p := &connPool{network: "tcp", addr: ln.Addr().String(), maxIdle: 4, idleTimeout: time.Minute}
	var d net.Dialer
	var conns []*upConn
	var server []net.Conn
	for range 3 {
		c, err := p.dial(&d)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		server = append(server, <-accepted)
	}
	if !quiet(conns[0].nc) {
		t.Error("an open, silent connection is not quiet")
	}
	server[0].Close()
	time.Sleep(50 * time.Millisecond)
	if quiet(conns[0].nc) {
		t.Error("a connection the peer closed is quiet")
	}
	io.WriteString(server[1], "junk")
	time.Sleep(50 * time.Millisecond)
	if quiet(conns[1].nc) {
		t.Error("a connection with unread bytes is quiet")
	}
	// A reused connection is checked as the request goes out: the dead
	// ones are refused before anything is sent, the live one sends and
	// waits for the answer's first bytes.
	base := time.Now()
	for i, c := range []*upConn{conns[2], conns[0], conns[1]} { // the dead ones on top
		p.put(c, base.Add(time.Duration(i)*time.Millisecond))
	}
	for _, want := range []*upConn{conns[1], conns[0]} {
		c := p.get(base.Add(2 * time.Second))
		if c != want {
			t.Fatalf("get returned another connection than the top one")
		}
		if err := c.sendReused([]byte("GET / HTTP/1.1\r\n\r\n")); err != errNotQuiet {
			t.Errorf("sendReused on a dead connection: %v, want errNotQuiet", err)
		}
	}
	live := p.get(base.Add(2 * time.Second))
	if live != conns[2] {
		t.Fatalf("get did not return the live connection")
	}
	go func() {
		buf := make([]byte, 64)
		n, _ := server[2].Read(buf)
		if string(buf[:n]) == "GET /x HTTP/1.1\r\n\r\n" {
			time.Sleep(20 * time.Millisecond) // the answer comes after the wait began
			io.WriteString(server[2], "HTTP/1.1 204 No Content\r\n\r\n")
		}
	}()
	_ = live.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := live.sendReused([]byte("GET /x HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatalf("sendReused on a live connection: %v", err)
	}
	if got := string(live.buf[live.r:live.w]); got != "HTTP/1.1 204 No Content\r\n\r\n" {
		t.Errorf("read after sendReused: %q", got)
	}
	live.r, live.w = 0, 0
	if c := p.get(base.Add(2 * time.Second)); c != nil {
		t.Errorf("connections left in the pool")
	}
	// dropIdleSince closes those idle since then or longer.
	p.put(conns[2], base.Add(3*time.Second))
	c4, _ := p.dial(&d)
	p.put(c4, base.Add(5*time.Second))
	p.dropIdleSince(base.Add(4 * time.Second))
	p.mu.Lock()
	left := slices.Clone(p.idle)
	p.mu.Unlock()
	if len(left) != 1 || left[0] != c4 {
		t.Errorf("idle after drop: %d", len(left))
	}
	p.closeIdle(true)
}
