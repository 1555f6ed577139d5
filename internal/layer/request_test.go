package layer

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/fastpath"
)

func TestExpandPlaceholders(t *testing.T) {
	r := httptest.NewRequest("GET", "http://app.test/a/b?q=1", nil)
	r.RemoteAddr = "[2001:db8::1]:4242"
	r.Header.Set("X-Request-Id", "rid-1")
	r.TLS = &tls.ConnectionState{}
	q := httpRequest{r}
	cases := map[string]string{
		"{client_ip}":                "2001:db8::1",
		"{host} {method} {path}":     "app.test GET /a/b",
		"id={request_id};s={scheme}": "id=rid-1;s=https",
		"{unknown} {host":            "{unknown} {host",
		`{"json": true}`:             `{"json": true}`,
		"plain":                      "plain",
	}
	for in, want := range cases {
		if got := expand(in, q, nil); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
	// Behind a trusted proxy, {client_ip} is the client it names, as for
	// every other use of the client address.
	r.RemoteAddr = "10.0.0.7:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	trusted := clientip.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if got := expand("{client_ip}", q, trusted); got != "203.0.113.9" {
		t.Errorf("{client_ip} behind a trusted proxy = %q, want 203.0.113.9", got)
	}
	if got := expand("{client_ip}", q, nil); got != "10.0.0.7" {
		t.Errorf("{client_ip} with no trusted proxies = %q, want the peer", got)
	}
	// A Host with a line break cannot split the field.
	r.Host = "evil\r\nSet-Cookie: x"
	if got := expand("{host}", q, nil); strings.ContainsAny(got, "\r\n") {
		t.Errorf("expand kept control characters: %q", got)
	}
}

// FuzzExpand: expansion never panics and never yields control characters.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"{host}", "{client_ip}-{request_id}", "{{}}", "{", "}{", "{path}{path}"} {
		f.Add(s, "h\x00st", "/p\nath")
	}
	f.Fuzz(func(t *testing.T, value, host, path string) {
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.Host, r.URL.Path = host, path
		got := expand(value, httpRequest{r}, nil)
		for i := 0; i < len(got); i++ {
			if got[i] < ' ' || got[i] == 0x7f {
				t.Fatalf("expand(%q) = %q: a control character in a header value", value, got)
			}
		}
	})
}

// Request rules edit a copy of the request the handler gets (the original
// stays as sent), and send a matching request off the fast path.
func TestRequestRules(t *testing.T) {
	rules := NewHeaderLayer(nil, []config.HeaderRule{
		{Match: "/api/**", Set: map[string]string{"X-Real-IP": "{client_ip}"}, Remove: []string{"Cookie"}},
	}, nil)
	var got http.Header
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() })
	fast := fastpath.HandlerFunc(func(_ *fastpath.Request, w *fastpath.ResponseWriter) bool {
		w.WriteHeader(204)
		return true
	})
	h := Chain(bothEngines{next, fast}, rules)

	r := httptest.NewRequest("GET", "/api/x", nil)
	r.RemoteAddr = "192.0.2.7:1234"
	r.Header.Set("Cookie", "s=1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.Get("X-Real-Ip") != "192.0.2.7" || got.Get("Cookie") != "" {
		t.Errorf("handler saw %v", got)
	}
	if r.Header.Get("Cookie") != "s=1" {
		t.Error("the client's request was changed (the access log reads it)")
	}
	r2 := httptest.NewRequest("GET", "/static/x", nil)
	r2.Header.Set("Cookie", "s=1")
	h.ServeHTTP(httptest.NewRecorder(), r2)
	if got.Get("Cookie") != "s=1" {
		t.Error("a rule for /api/** edited /static/x")
	}

	fh := h.(fastpath.Handler)
	rec := fastpath.NewRecorder()
	if rec.Serve(fh, &fastpath.Request{Method: "GET", Path: "/api/x", RawPath: "/api/x", URI: "/api/x", Proto: "HTTP/1.1"}) {
		t.Error("fast path served a request a rule edits")
	}
	if !fastpath.NewRecorder().Serve(fh, &fastpath.Request{Method: "GET", Path: "/static/x", RawPath: "/static/x", URI: "/static/x", Proto: "HTTP/1.1"}) {
		t.Error("fast path declined a request no rule edits")
	}
}

// bothEngines is a handler with a fast path.
type bothEngines struct {
	h http.Handler
	f fastpath.Handler
}

func (b bothEngines) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.h.ServeHTTP(w, r) }
func (b bothEngines) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	return b.f.ServeFast(req, w)
}

// answerer is a handler answering every request as its SPA index.
type answerer struct{}

func (answerer) AnswerPath() string { return "/index.html" }
func (answerer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if mp, ok := w.(interface{ SetMatchPath(string) }); ok {
		mp.SetMatchPath("/index.html")
	}
	w.WriteHeader(200)
}

func TestAnswerPathMatched(t *testing.T) {
	h := Chain(answerer{}, NewHeaderRules([]config.HeaderRule{{Match: "/index.html", Set: map[string]string{"Cache-Control": "no-cache"}}}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/some/page", nil))
	if rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("SPA answer: Cache-Control %q, want the /index.html rule's", rec.Header().Get("Cache-Control"))
	}
}
