package layer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/fastpath"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/index.html", "/index.html", true},
		{"/index.html", "/index.htm", false},
		{"/assets/**", "/assets/app.js", true},
		{"/assets/**", "/assets/js/app.js", true},
		{"/assets/**", "/assets/", true},
		{"/assets/**", "/assets", false},
		{"/assets/**", "/other/assets/x", false},
		{"/assets/*", "/assets/app.js", true},
		{"/assets/*", "/assets/js/app.js", false},
		{"*.js", "app.js", true},
		{"*.js", "app.json", false},
		{"/**/*.map", "/a/b/c.map", true},
		{"/**/*.map", "/c.map", false}, // "/**/" needs two slashes
		{"/**.map", "/c.map", true},
		{"/a?c", "/abc", true},
		{"/a?c", "/a/c", false},
		{"/a*c*e", "/abcde", true},
		{"/a*c*e", "/abcd/e", false},
		{"**", "/anything/at/all", true},
		{"/x/**/y", "/x/1/2/y", true},
		{"/x/**/y", "/x/1/2/z", false},
	}
	for _, tc := range tests {
		if got := matchGlob(tc.pattern, tc.path); got != tc.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

// globRegexp is the reference the fuzzer compares matchGlob with.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			b.WriteString("(?s:.*)")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func FuzzMatchGlob(f *testing.F) {
	f.Add("/assets/**", "/assets/js/app.js")
	f.Add("*.js", "app.js")
	f.Add("/a*b**c?d", "/aXb/y/cZd")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return
		}
		for _, c := range []byte(pattern + s) {
			if c >= 0x80 { // the reference works on runes, matchGlob on bytes
				return
			}
		}
		if got, want := matchGlob(pattern, s), globRegexp(pattern).MatchString(s); got != want {
			t.Errorf("matchGlob(%q, %q) = %v, reference %v", pattern, s, got, want)
		}
	})
}

// both is a tiny handler with a fast path: a 1 KiB text body, with a
// Cache-Control and an X-Handler field, or 404 for /missing.
type both struct{}

func (both) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/missing" {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "4")
		w.WriteHeader(404)
		io.WriteString(w, "gone")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Handler", "h")
	w.Header().Set("Content-Length", "2")
	io.WriteString(w, "ok")
}

func (both) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if req.Path == "/missing" {
		w.WriteHeader(404)
		w.AddHeader("Content-Type", "text/plain")
		w.AddHeader("Content-Length", "4")
		w.Write([]byte("gone"))
		return true
	}
	w.WriteHeader(200)
	w.AddHeader("Content-Type", "text/plain")
	w.AddHeader("Cache-Control", "no-cache")
	w.AddHeader("X-Handler", "h")
	w.AddHeader("Content-Length", "2")
	w.Write([]byte("ok"))
	return true
}

var testRules = []config.HeaderRule{
	{Match: "/assets/**", Set: map[string]string{"cache-control": "public, max-age=31536000, immutable"}},
	{Match: "/index.html", Set: map[string]string{"Cache-Control": "no-cache, must-revalidate"}, Add: map[string]string{"Link": "</a.css>; rel=preload"}},
	{Match: "*.js", Add: map[string]string{"X-Js": "1", "Vary": "Origin"}, Remove: []string{"x-handler", "X-Site"}},
	{Match: "/always/**", Set: map[string]string{"X-Always": "yes"}, Always: true},
	{Set: map[string]string{"X-Every": "1"}},
}

// TestHeaderRulesBothEngines: the same rules give the same whole
// responses on the fast path and on net/http, and the fast path keeps
// serving the route.
func TestHeaderRulesBothEngines(t *testing.T) {
	h := Chain(both{}, NewHeaderRules(testRules)).(*chained)
	site := [][2]string{{"X-Site", "s"}, {"X-Frame-Options", "DENY"}}
	f := enginetest.Start(t, h, site)
	cases := []struct {
		path  string
		check func(http.Header) bool
	}{
		{"/assets/app.css", func(h http.Header) bool {
			return h.Get("Cache-Control") == "public, max-age=31536000, immutable" && h.Get("X-Every") == "1" && h.Get("X-Handler") == "h"
		}},
		{"/assets/js/app.js", func(h http.Header) bool {
			return h.Get("X-Js") == "1" && h.Get("X-Handler") == "" && h.Get("X-Site") == "" && h.Get("X-Frame-Options") == "DENY"
		}},
		{"/index.html", func(h http.Header) bool {
			return h.Get("Cache-Control") == "no-cache, must-revalidate" && h.Get("Link") != ""
		}},
		{"/missing", func(h http.Header) bool { // 404: only "always" rules
			return h.Get("X-Every") == "" && h.Get("Cache-Control") == ""
		}},
		{"/always/missing", func(h http.Header) bool { return h.Get("X-Always") == "yes" }},
		{"/plain", func(h http.Header) bool { return h.Get("Cache-Control") == "no-cache" && h.Get("X-Every") == "1" }},
	}
	for _, tc := range cases {
		res := f.Same(t, true, enginetest.GET(tc.path, "x"))
		if !tc.check(res[0].Header) {
			t.Errorf("%s: header %v", tc.path, res[0].Header)
		}
	}
	// HEAD too, and several requests on one connection.
	f.Same(t, true, "HEAD /assets/a.js HTTP/1.1\r\nHost: x\r\n\r\n", enginetest.GET("/index.html", "x"), enginetest.GET("/x", "x"))
}

// TestHeaderWriterKeepsInterfaces: the net/http wrapper keeps streaming,
// hijacking and sendfile of the writer it wraps.
func TestHeaderWriterKeepsInterfaces(t *testing.T) {
	var w http.ResponseWriter = &headerWriter{w: httptest.NewRecorder(), h: &chained{}}
	if _, ok := w.(http.Flusher); !ok {
		t.Error("lost http.Flusher")
	}
	if _, ok := w.(http.Hijacker); !ok {
		t.Error("lost http.Hijacker")
	}
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Error("lost io.ReaderFrom")
	}
}

func TestChainWithoutLayersIsTheHandler(t *testing.T) {
	if h := Chain(both{}); h != (both{}) {
		t.Errorf("Chain with no layers = %T, want the handler itself", h)
	}
}

// TestFastFilterDoesNotAllocate: a rule on the fast path costs no
// allocation.
func TestFastFilterDoesNotAllocate(t *testing.T) {
	hr := NewHeaderRules(testRules)
	allocs := testing.AllocsPerRun(1000, func() {
		if !hr.EditsHeader("/assets/js/app.js") {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Errorf("EditsHeader: %v allocs, want 0", allocs)
	}
}
