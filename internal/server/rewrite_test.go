package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"portico/internal/config"
)

func TestRewrite(t *testing.T) {
	rw, err := buildRewrites([]config.Rewrite{
		{From: `^/blog/(\d+)$`, To: "/posts/$1.html"},
		{From: `^/u/(?P<name>[a-z]+)$`, To: "/users?name=${name}"},
		{From: `^/sp/(.*)$`, To: "/files/$1"},
		{From: `^/q/(.*)$`, To: "/search?q=$1"},
		{From: `^/blog/.*$`, To: "/never"}, // the first match wins
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{rewrites: rw}
	cases := []struct{ target, wantPath, wantRaw, wantQuery string }{
		{"/blog/42", "/posts/42.html", "", ""},
		{"/blog/42?x=1", "/posts/42.html", "", "x=1"}, // no "?" in to: the query stays
		{"/u/ann", "/users", "", "name=ann"},
		{"/u/ann?page=2", "/users", "", "name=ann&page=2"}, // the client's query appended
		{"/q/a&b=c%20d", "/search", "", "q=a%26b%3Dc+d"},   // groups escaped in the query
		{"/sp/a%20b", "/files/a b", "", ""},                // decoded path in, decoded out
		{"/other", "/other", "", ""},
		{"/u/ann%3Fx", "/u/ann?x", "", ""},  // no match: [a-z]+ stops at "?"
		{"/sp/a%3Fb", "/files/a?b", "", ""}, // a "?" from a group stays in the path
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.target, nil)
		r2 := s.rewrite(r)
		if r2.URL.Path != c.wantPath || r2.URL.RawPath != c.wantRaw || r2.URL.RawQuery != c.wantQuery {
			t.Errorf("%s -> path %q raw %q query %q, want %q %q %q", c.target, r2.URL.Path, r2.URL.RawPath, r2.URL.RawQuery, c.wantPath, c.wantRaw, c.wantQuery)
		}
		if r2 != r && r.URL.Path == r2.URL.Path {
			t.Errorf("%s: the original request was changed", c.target)
		}
		if r2.RequestURI != r.RequestURI {
			t.Errorf("%s: RequestURI %q (the access log's) changed", c.target, r2.RequestURI)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := newRequestID()
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Fatalf("id %q: want 32 fresh hex digits", id)
		}
		seen[id] = true
	}
	for in, pass := range map[string]bool{
		"abc-123_X.y:z": true, "": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
		"a b": false, "a\"b": false, "a\nb": false, "ü": false,
	} {
		if got := requestID(config.RequestIDPass, in); (got == in) != pass {
			t.Errorf("pass mode, client id %q: got %q", in, got)
		}
		if got := requestID(config.RequestIDGenerate, in); got == in && in != "" {
			t.Errorf("generate mode kept the client's id %q", in)
		}
	}
	raw := []byte("Host: x\r\nX-Request-ID: abc\r\nAccept: */*\r\n")
	if got := rawHeaderValue(raw, "X-Request-Id"); got != "abc" {
		t.Errorf("rawHeaderValue = %q", got)
	}
	if got := rawHeaderValue([]byte("X-Request-Id: a\r\nx-request-id: b\r\n"), "X-Request-Id"); got != "" {
		t.Errorf("repeated field: %q, want none", got)
	}
}
