package fastpath

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequestOK(t *testing.T) {
	tests := []struct {
		in                     string
		method, uri, path, qry string
		host, ae, conn         string
		keepAlive              bool
		proto                  string
	}{
		{in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", method: "GET", uri: "/", path: "/", host: "a", keepAlive: true, proto: "HTTP/1.1"},
		{in: "HEAD /x.css HTTP/1.1\r\nhost: a:8080\r\n\r\n", method: "HEAD", uri: "/x.css", path: "/x.css", host: "a:8080", keepAlive: true, proto: "HTTP/1.1"},
		{in: "GET /a%20b?x=1&y=%zz HTTP/1.1\r\nHost: a\r\n\r\n", method: "GET", uri: "/a%20b?x=1&y=%zz", path: "/a b", qry: "x=1&y=%zz", host: "a", keepAlive: true, proto: "HTTP/1.1"},
		{in: "GET /? HTTP/1.1\r\nHost: a\r\n\r\n", method: "GET", uri: "/?", path: "/", host: "a", keepAlive: true, proto: "HTTP/1.1"},
		{in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", method: "GET", uri: "/", path: "/", host: "a", conn: "close", proto: "HTTP/1.1"},
		{in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, TE\r\n\r\n", method: "GET", uri: "/", path: "/", host: "a", conn: "Keep-Alive, TE", keepAlive: true, proto: "HTTP/1.1"},
		{in: "GET / HTTP/1.0\r\n\r\n", method: "GET", uri: "/", path: "/", proto: "HTTP/1.0"},
		{in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", method: "GET", uri: "/", path: "/", conn: "keep-alive", keepAlive: true, proto: "HTTP/1.0"},
		{in: "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding:  gzip, br \t\r\nX-Other: \x80\xff\r\n\r\n", method: "GET", uri: "/", path: "/", host: "a", ae: "gzip, br", keepAlive: true, proto: "HTTP/1.1"},
		{in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", method: "GET", uri: "/", path: "/", host: "a", keepAlive: true, proto: "HTTP/1.1"},
		{in: "GET / HTTP/1.1\r\nHost: [::1]:80\r\nEmpty:\r\n\r\n", method: "GET", uri: "/", path: "/", host: "[::1]:80", keepAlive: true, proto: "HTTP/1.1"},
	}
	for _, tt := range tests {
		var req Request
		n, res := parseRequest([]byte(tt.in+"NEXT"), &req)
		if res != parseOK {
			t.Errorf("%q: got result %d, want OK", tt.in, res)
			continue
		}
		if n != len(tt.in) {
			t.Errorf("%q: got n %d, want %d", tt.in, n, len(tt.in))
		}
		got := []string{req.Method, req.URI, req.Path, req.Query, req.Host, req.AcceptEncoding, req.Connection, req.Proto}
		want := []string{tt.method, tt.uri, tt.path, tt.qry, tt.host, tt.ae, tt.conn, tt.proto}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q: got %q, want %q", tt.in, got, want)
		}
		if req.KeepAlive != tt.keepAlive {
			t.Errorf("%q: got keepAlive %v, want %v", tt.in, req.KeepAlive, tt.keepAlive)
		}
	}
}

func TestParseRequestAllFields(t *testing.T) {
	in := "GET /p HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nAccept-Encoding: ae\r\nAccept: ac\r\n" +
		"If-None-Match: inm\r\nIf-Modified-Since: ims\r\nIf-Match: im\r\nIf-Unmodified-Since: ius\r\n" +
		"Range: r\r\nIf-Range: ir\r\nUser-Agent: ua\r\nReferer: ref\r\nAuthorization: au\r\nCookie: c\r\n\r\n"
	var req Request
	if _, res := parseRequest([]byte(in), &req); res != parseOK {
		t.Fatalf("got %d, want OK", res)
	}
	got := []string{req.Host, req.Connection, req.AcceptEncoding, req.Accept, req.IfNoneMatch, req.IfModifiedSince,
		req.IfMatch, req.IfUnmodifiedSince, req.Range, req.IfRange, req.UserAgent, req.Referer, req.Authorization}
	want := []string{"h", "keep-alive", "ae", "ac", "inm", "ims", "im", "ius", "r", "ir", "ua", "ref", "au"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Every malformed or unusual request goes to net/http.
func TestParseRequestHandOff(t *testing.T) {
	tests := []string{
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
		"PUT / HTTP/1.1\r\nHost: a\r\n\r\n",
		"get / HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
		"GET / http/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\n",
		"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", // obs-fold
		"GET / HTTP/1.1\r\nHost: a\r\n\tX: b\r\n\r\n",     // obs-fold
		"GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",      // space before colon
		"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n",    // not a token
		"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",        // empty name
		"GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",                       // no Host
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", // two Hosts
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",          // bad Host
		"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",          // bad Host
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",              // empty Host
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: identity\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: clo se\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\nrange: bytes=2-3\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: keep-alive\r\n\r\n",
		"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /% HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", // net/http skips a leading empty line; we hand off
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	}
	for _, in := range tests {
		var req Request
		if _, res := parseRequest([]byte(in), &req); res != parseHandOff {
			t.Errorf("%q: got result %d, want hand-off", in, res)
		}
	}
}

// Every strict prefix of a good request is "need more", never a decision.
func TestParseRequestPrefixes(t *testing.T) {
	for _, in := range []string{
		"GET /a?b HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
		"HEAD / HTTP/1.0\r\n\r\n",
		"GET /%41 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	} {
		for i := 0; i < len(in); i++ {
			var req Request
			if _, res := parseRequest([]byte(in[:i]), &req); res != parseNeedMore {
				t.Errorf("%q: got result %d, want need-more", in[:i], res)
			}
		}
	}
}

func TestParseRequestNoAllocs(t *testing.T) {
	in := []byte("GET /static/a%20b.css?v=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: x\r\nAccept-Encoding: gzip, br\r\nAccept: */*\r\n\r\n")
	var req Request
	parseRequest(in, &req)
	allocs := testing.AllocsPerRun(100, func() {
		req.reset()
		if _, res := parseRequest(in, &req); res != parseOK {
			t.Fatal("not OK")
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs, want 0", allocs)
	}
}

// checkAgainstNetHTTP is the fuzz oracle: whatever the fast parser accepts
// must be a request net/http accepts too, read the same way.
func checkAgainstNetHTTP(t *testing.T, data []byte) {
	var req Request
	n, res := parseRequest(data, &req)
	switch res {
	case parseNeedMore, parseHandOff:
		return
	}
	if n <= 0 || n > len(data) || !bytes.HasSuffix(data[:n], []byte("\r\n\r\n")) {
		t.Fatalf("%q: bad length %d", data, n)
	}
	hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data[:n])))
	if err != nil {
		t.Fatalf("%q: fast path accepts, net/http says %v", data, err)
	}
	if hr.Method != req.Method || hr.RequestURI != req.URI || hr.URL.Path != req.Path ||
		hr.URL.RawQuery != req.Query || hr.Host != req.Host || hr.Proto != req.Proto {
		t.Fatalf("%q: got %q %q %q %q %q %q, net/http %q %q %q %q %q %q", data,
			req.Method, req.URI, req.Path, req.Query, req.Host, req.Proto,
			hr.Method, hr.RequestURI, hr.URL.Path, hr.URL.RawQuery, hr.Host, hr.Proto)
	}
	if hr.ContentLength > 0 || len(hr.TransferEncoding) > 0 {
		t.Fatalf("%q: fast path accepts a request with a body", data)
	}
	if hr.Close == req.KeepAlive {
		t.Fatalf("%q: keep-alive %v, net/http Close %v", data, req.KeepAlive, hr.Close)
	}
	for name, v := range map[string]string{
		"Accept-Encoding": req.AcceptEncoding, "If-None-Match": req.IfNoneMatch, "Range": req.Range,
		"If-Modified-Since": req.IfModifiedSince, "User-Agent": req.UserAgent, "Referer": req.Referer,
		"Accept": req.Accept, "If-Range": req.IfRange, "If-Match": req.IfMatch, "Authorization": req.Authorization,
	} {
		if got := hr.Header[name]; len(got) > 1 || len(got) == 1 && got[0] != v || len(got) == 0 && v != "" {
			t.Fatalf("%q: %s: got %q, net/http %q", data, name, v, got)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /a%2fb HTTP/1.1\r\nHost: a:1\r\nAccept-Encoding: br\r\nRange: bytes=0-1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstNetHTTP(t, data)
	})
}
