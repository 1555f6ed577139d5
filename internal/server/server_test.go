package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// textHandler answers with a fixed body, to tell routes apart.
func textHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body+" "+r.URL.Path)
	})
}

func testSite(name string, routes map[string]http.Handler) *site {
	var rs []*route
	for p, h := range routes {
		rs = append(rs, &route{path: p, bare: strings.TrimSuffix(p, "/"), maxBody: 1 << 20, handler: h})
	}
	return newSite(name, rs, nil)
}

func TestRouteLongestPrefix(t *testing.T) {
	s := testSite("s", map[string]http.Handler{
		"/":         textHandler("root"),
		"/api/":     textHandler("api"),
		"/api/v2/":  textHandler("v2"),
		"/download": textHandler("dl"),
		"/cgi-bin/": textHandler("cgi"),
	})
	tests := []struct{ path, want string }{
		{"/", "root /"},
		{"/index.html", "root /index.html"},
		{"/api", "api /api"}, // "/api/" also matches "/api"
		{"/api/", "api /api/"},
		{"/api/users", "api /api/users"},
		{"/api/v2", "v2 /api/v2"},
		{"/api/v2/x", "v2 /api/v2/x"},
		{"/apix", "root /apix"},
		{"/download", "dl /download"},
		{"/downloads/x", "dl /downloads/x"}, // plain prefix, like nginx location
		{"/cgi-bin/x.py/more", "cgi /cgi-bin/x.py/more"},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if got := rec.Body.String(); got != tc.want {
			t.Errorf("GET %s: got %q, want %q", tc.path, got, tc.want)
		}
	}
}

func mustUnescape(t *testing.T, p string) string {
	t.Helper()
	req, err := http.NewRequest("GET", "http://x"+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.URL.Path
}

func TestVhostMatching(t *testing.T) {
	v := &vhost{exact: map[string]*site{}}
	exact := testSite("exact", map[string]http.Handler{"/": textHandler("exact")})
	wild := testSite("wild", map[string]http.Handler{"/": textHandler("wild")})
	deep := testSite("deep", map[string]http.Handler{"/": textHandler("deep")})
	def := testSite("default", map[string]http.Handler{"/": textHandler("default")})
	v.add([]string{"example.test"}, exact)
	v.add([]string{"*.example.test"}, wild)
	v.add([]string{"*.api.example.test"}, deep)
	v.add(nil, def)
	tests := []struct{ host, want string }{
		{"example.test", "exact"},
		{"EXAMPLE.test:8080", "exact"},
		{"example.test.", "exact"},
		{"www.example.test", "wild"},
		{"a.b.example.test", "wild"},
		{"v1.api.example.test", "deep"},
		{"other.test", "default"},
		{"127.0.0.1:8080", "default"},
		{"[::1]:8080", "default"},
		{"", "default"},
		{"xexample.test", "default"},
	}
	for _, tc := range tests {
		if got := v.lookup(tc.host); got == nil || got.name != tc.want {
			name := "<nil>"
			if got != nil {
				name = got.name
			}
			t.Errorf("Host %q: got site %q, want %q", tc.host, name, tc.want)
		}
	}
	// Without a default site an unknown host is a 404, not another site.
	v.fallback = nil
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Host = "other.test"
	v.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown host without default site: got %d, want 404", rec.Code)
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.test", "example.test"},
		{"Example.Test:80", "example.test"},
		{"[::1]:8080", "::1"},
		{"[::1]", "::1"},
		{"127.0.0.1:9", "127.0.0.1"},
		{"a.test.", "a.test"},
	}
	for _, tc := range tests {
		if got := normalizeHost(tc.in); got != tc.want {
			t.Errorf("normalizeHost(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStripPrefixKeepsEscapes(t *testing.T) {
	tests := []struct{ url, prefix, path, escaped string }{
		{"/api/users", "/api", "/users", "/users"},
		{"/api", "/api", "/", "/"},
		{"/api/a%2Fb", "/api", "/a/b", "/a%2Fb"},
		{"/api/%3Fq", "/api", "/?q", "/%3Fq"},
		{"/api/a%2fb%23c", "/api", "/a/b#c", "/a%2fb%23c"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", tc.url, nil)
		r2 := stripPrefix(r, tc.prefix)
		if r2.URL.Path != tc.path || r2.URL.EscapedPath() != tc.escaped {
			t.Errorf("strip %q from %q: got path %q escaped %q, want %q %q", tc.prefix, tc.url, r2.URL.Path, r2.URL.EscapedPath(), tc.path, tc.escaped)
		}
		if r.URL.Path != mustUnescape(t, tc.url) {
			t.Errorf("strip modified the original request: %q", r.URL.Path)
		}
	}
}

func TestSiteHeadersAndBodyLimit(t *testing.T) {
	var seen []byte
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		seen = b
		w.WriteHeader(204)
	})
	s := newSite("s", []*route{{path: "/", maxBody: 10, handler: h}}, map[string]string{"x-frame-options": "DENY"})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("small")))
	if rec.Code != 204 || string(seen) != "small" {
		t.Errorf("small body: got %d %q", rec.Code, seen)
	}
	if got := rec.Header().Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("site header: got %q, want DENY", got)
	}
	// Declared too large: refused before the handler runs.
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("this is more than ten bytes")))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: got %d, want 413", rec.Code)
	}
	// Chunked (unknown length) and too large: the read fails.
	req := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader("this is more "), strings.NewReader("than ten bytes")))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked large body: got %d, want 413", rec.Code)
	}
}

func TestRedirectHandler(t *testing.T) {
	tests := []struct {
		to, url, want string
		status        int
	}{
		{"https://example.test/new/", "/old/x?a=1", "https://example.test/new/", 301},
		{"https://example.test{uri}", "/old/x?a=1", "https://example.test/old/x?a=1", 308},
		{"/new/{path}", "/old/a/b", "/new/a/b", 302},
	}
	for _, tc := range tests {
		h := &redirectHandler{to: tc.to, status: tc.status, prefix: "/old"}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.url, nil))
		if rec.Code != tc.status || rec.Header().Get("Location") != tc.want {
			t.Errorf("%s via %q: got %d %q, want %d %q", tc.url, tc.to, rec.Code, rec.Header().Get("Location"), tc.status, tc.want)
		}
	}
}

// newTestServer builds a Server around a tree with one default site.
func newTestServer(t *testing.T, handler http.Handler, logFormat string) (*Server, *bytes.Buffer, *Tree) {
	t.Helper()
	s := New(Options{})
	var logBuf bytes.Buffer
	al, err := openAccessLog("stdout", logFormat, &logBuf, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	config.ApplyDefaults(cfg)
	tr := &Tree{cfg: cfg, byListener: map[string]*vhost{}, log: al}
	v := &vhost{exact: map[string]*site{}}
	v.add(nil, testSite("main", map[string]http.Handler{"/": handler}))
	tr.byListener["k"] = v
	s.tree.Store(tr)
	return s, &logBuf, tr
}

func TestPanicIsLogged500(t *testing.T) {
	var errLog bytes.Buffer
	s, _, tr := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}), "combined")
	s.opts.Logger = newTextLogger(&errLog)
	defer tr.Close(t.Context())
	rec := httptest.NewRecorder()
	s.entry("k").ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 {
		t.Errorf("panic: got %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "boom") || strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("panic detail leaked to the client: %q", rec.Body.String())
	}
	if !strings.Contains(errLog.String(), "boom") {
		t.Errorf("panic not in the error log: %q", errLog.String())
	}
}

func TestAccessLogFormats(t *testing.T) {
	for _, format := range []string{"combined", "json"} {
		s, logBuf, tr := newTestServer(t, textHandler("hello"), format)
		req := httptest.NewRequest("GET", "/a?b=\"c\"", nil)
		req.RemoteAddr = "192.0.2.7:5555"
		req.Header.Set("User-Agent", "evil\"\n127.0.0.1 - - fake")
		req.Header.Set("Referer", "http://ref.test/")
		rec := httptest.NewRecorder()
		s.entry("k").ServeHTTP(rec, req)
		tr.Close(t.Context())
		line := logBuf.String()
		if strings.Count(line, "\n") != 1 {
			t.Fatalf("%s: want exactly one line, got %q", format, line)
		}
		switch format {
		case "combined":
			want := `192.0.2.7 - - [`
			if !strings.HasPrefix(line, want) || !strings.Contains(line, `] "GET /a?b=\x22c\x22 HTTP/1.1" 200 8 "http://ref.test/" "evil\x22\x0A127.0.0.1 - - fake"`) {
				t.Errorf("combined: got %q", line)
			}
		case "json":
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("json line %q: %v", line, err)
			}
			if m["remote_addr"] != "192.0.2.7" || m["status"] != float64(200) || m["bytes"] != float64(8) ||
				m["uri"] != `/a?b="c"` || m["site"] != "main" || m["user_agent"] != "evil\"\n127.0.0.1 - - fake" {
				t.Errorf("json: got %v", m)
			}
		}
	}
}

func TestTransferEncodingClosesConnection(t *testing.T) {
	s, _, tr := newTestServer(t, textHandler("x"), "combined")
	defer tr.Close(t.Context())
	req := httptest.NewRequest("POST", "/", strings.NewReader("abc"))
	req.TransferEncoding = []string{"chunked"}
	rec := httptest.NewRecorder()
	s.entry("k").ServeHTTP(rec, req)
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Errorf("chunked request: Connection %q, want close", got)
	}
}

// recorder must keep the optional interfaces of the writer it wraps.
func TestRecorderKeepsInterfaces(t *testing.T) {
	var w http.ResponseWriter = &recorder{w: httptest.NewRecorder(), start: time.Now()}
	if _, ok := w.(http.Flusher); !ok {
		t.Error("recorder lost http.Flusher")
	}
	if _, ok := w.(http.Hijacker); !ok {
		t.Error("recorder lost http.Hijacker")
	}
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Error("recorder lost io.ReaderFrom")
	}
	if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
		t.Error("recorder lost Unwrap")
	}
}

// A route that fails to build is an error, never a panic, and what was
// built before it is closed.
func TestBuildErrorIsCleanedUp(t *testing.T) {
	cfg := &config.Config{Sites: []config.Site{{
		Listen: []string{"127.0.0.1:0"},
		Routes: []config.Route{
			{Path: "/api/", Proxy: &config.Proxy{Upstreams: []string{"http://127.0.0.1:1"}}},
			{Path: "/", Static: &config.Static{Root: filepath.Join(t.TempDir(), "missing")}},
		},
	}}}
	config.ApplyDefaults(cfg)
	tr, err := Build(cfg, Deps{})
	if err == nil || tr != nil {
		t.Fatalf("Build with a missing root: tree %v, err %v; want nil and an error", tr, err)
	}
	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("error does not name the problem: %v", err)
	}
}

// Site headers survive a handler that clears the header map after a 1xx
// (httputil.ReverseProxy does, after relaying 103 Early Hints).
func TestSiteHeadersSurviveEarlyHints(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		clear(w.Header())
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
	})
	s := New(Options{})
	cfg := &config.Config{}
	config.ApplyDefaults(cfg)
	tr := &Tree{cfg: cfg, byListener: map[string]*vhost{}}
	v := &vhost{exact: map[string]*site{}}
	v.add(nil, newSite("s", []*route{{path: "/", maxBody: 1, handler: h}}, map[string]string{"X-Frame-Options": "DENY"}))
	tr.byListener["k"] = v
	s.tree.Store(tr)
	rec := httptest.NewRecorder()
	s.entry("k").ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("after a 103: X-Frame-Options %q, want DENY", got)
	}
}

// A request still running when its tree closes (shutdown's deadline
// passed) ends without racing the close: the access log it reads stays,
// closed, and drops its line. Under -race, the tree's Close used to
// clear the log the ending request read.
func TestRequestEndingAfterTreeCloses(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s, _, tr := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "late")
	}), "combined")
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.entry("k").ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/late", nil))
	}()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- tr.Close(t.Context()) }()
	close(release) // not ordered with Close: the race detector sees both
	<-done
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(t.Context()); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
