package fastcgi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/fastpath"
)

// writeTree creates files under dir: name -> content.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testRoot is a document root with scripts, files and traps.
func testRoot(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "public")
	writeTree(t, root, map[string]string{
		"index.php":        "front",
		"a.php":            "a",
		"sub/index.php":    "sub index",
		"sub/b.php":        "b",
		"style.css":        "body{}",
		"upload/evil.jpg":  "<?php evil",
		"noindex/x.txt":    "x",
		"X.PHP":            "upper",
		".env":             "SECRET=1",
		".hidden.php":      "hidden",
		"dir.php/keep.txt": "a folder named like a script",
	})
	writeTree(t, dir, map[string]string{"outside.php": "outside"})
	if err := os.Symlink(filepath.Join(dir, "outside.php"), filepath.Join(root, "link.php")); err != nil {
		t.Fatal(err)
	}
	return root
}

type testSetup struct {
	h    *Handler
	srv  *httptest.Server
	logs *enginetest.SyncBuffer
	fake *fakeServer
}

// newSetup serves a fastcgi handler for the route prefix "/app" over root,
// talking to fake, behind a real HTTP server.
func newSetup(t testing.TB, fake *fakeServer, root string, edit func(*config.FastCGI)) *testSetup {
	t.Helper()
	cfg := config.FastCGI{Upstream: fake.addr, Root: root}
	cfg.SetDefaults()
	cfg.ReadTimeout = config.Duration(5 * time.Second)
	if edit != nil {
		edit(&cfg)
	}
	logs := &enginetest.SyncBuffer{}
	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "static %s", r.URL.Path)
	})
	h, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Prefix: "/app", Files: files})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if err := h.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &testSetup{h: h, srv: srv, logs: logs, fake: fake}
}

func (s *testSetup) get(t *testing.T, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	client := *s.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, string(b)
}

// echoParams answers with the parameters named in the query's "p"
// values, one "NAME=value" line each, and stdin's length.
func echoParams(req *fakeReq) error {
	var b strings.Builder
	b.WriteString("Content-Type: text/plain\r\nX-Script: " + req.params["SCRIPT_NAME"] + "\r\n\r\n")
	for _, kv := range strings.Split(req.params["QUERY_STRING"], "&") {
		if name, ok := strings.CutPrefix(kv, "p="); ok {
			v, set := req.params[name]
			if !set {
				v = "<unset>"
			}
			fmt.Fprintf(&b, "%s=%s\n", name, v)
		}
	}
	fmt.Fprintf(&b, "stdin=%d\n", len(req.stdin))
	return req.respond(b.String())
}

func TestResolve(t *testing.T) {
	fake := newFakeServer(t, echoParams)
	s := newSetup(t, fake, testRoot(t), nil)
	q := "?p=SCRIPT_NAME&p=PATH_INFO&p=SCRIPT_FILENAME&p=REQUEST_URI"
	root := s.h.root
	tests := []struct {
		path   string
		status int
		want   string // substring of the body
	}{
		{"/app/a.php" + q, 200, "SCRIPT_NAME=/app/a.php\nPATH_INFO=\nSCRIPT_FILENAME=" + root + "/a.php\n"},
		{"/app/a.php/x/y" + q, 200, "SCRIPT_NAME=/app/a.php\nPATH_INFO=/x/y\n"},
		{"/app/a.php/" + q, 200, "PATH_INFO=/\n"},
		{"/app/sub/b.php/more" + q, 200, "SCRIPT_NAME=/app/sub/b.php\nPATH_INFO=/more\n"},
		// The front controller: no file, the index runs, REQUEST_URI kept.
		{"/app/blog/2024/hello" + q, 200, "SCRIPT_NAME=/app/index.php\nPATH_INFO=\nSCRIPT_FILENAME=" + root + "/index.php\nREQUEST_URI=/app/blog/2024/hello?"},
		{"/app" + q, 301, ""},
		{"/app/" + q, 200, "SCRIPT_NAME=/app/index.php\n"},
		{"/app/sub/" + q, 200, "SCRIPT_NAME=/app/sub/index.php\n"},
		{"/app/sub" + q, 301, ""},
		// A path through a file is no file: the front controller.
		{"/app/style.css/x" + q, 200, "SCRIPT_NAME=/app/index.php\n"},
		// Files that are not scripts go to the static handler.
		{"/app/style.css", 200, "static /app/style.css"},
		{"/app/noindex/", 200, "static /app/noindex/"},
		{"/app/upload/evil.jpg", 200, "static /app/upload/evil.jpg"},
		// A missing script is 404, not the front controller.
		{"/app/missing.php", 404, ""},
		{"/app/missing.php/x", 404, ""},
		// cgi.fix_pathinfo: evil.jpg must never run.
		{"/app/upload/evil.jpg/x.php", 404, ""},
		{"/app/upload/evil.jpg/x.php/y", 404, ""},
		// Not a regular file.
		{"/app/dir.php", 404, ""},
		{"/app/dir.php/keep.txt", 404, ""},
		// Never run nor served: other letter case, dotfiles, outside.
		{"/app/X.PHP", 404, ""},
		{"/app/.env", 404, ""},
		{"/app/.hidden.php", 404, ""},
		{"/app/link.php", 404, ""},
		{"/app/%2e%2e/outside.php", 404, ""},
		{"/app/sub/..%2f..%2foutside.php", 404, ""},
		{"/other.php", 404, ""},
	}
	for _, tc := range tests {
		resp, body := s.get(t, tc.path)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d with %q", tc.path, resp.StatusCode, body, tc.status, tc.want)
		}
		if strings.Contains(body, "outside") || strings.Contains(body, "evil") && !strings.Contains(body, "static") {
			t.Errorf("GET %s ran or sent what it must not: %q", tc.path, body)
		}
	}
	if resp, _ := s.get(t, "/app/sub?x=1"); resp.Header.Get("Location") != "/app/sub/?x=1" {
		t.Errorf("folder redirect Location = %q, want /app/sub/?x=1", resp.Header.Get("Location"))
	}
}

func TestParams(t *testing.T) {
	fake := newFakeServer(t, echoParams)
	s := newSetup(t, fake, testRoot(t), func(c *config.FastCGI) { c.Env = map[string]string{"APP_ENV": "test"} })
	_, body := s.get(t, "/app/a.php/pi?x=1&p=HTTP_PROXY&p=HTTP_X_USER&p=HTTP_ACCEPT&p=QUERY_STRING&p=REQUEST_METHOD&p=GATEWAY_INTERFACE&p=APP_ENV&p=REMOTE_ADDR&p=SERVER_PORT&p=HTTP_HOST&p=PATH_TRANSLATED&p=DOCUMENT_ROOT&p=REDIRECT_STATUS&p=CONTENT_LENGTH&p=HTTP_COOKIE",
		"Proxy", "http://evil.test:1", "X_User", "spoofed", "X-User", "real", "Accept", "a", "Accept", "b", "Cookie", "a=1", "Cookie", "b=2")
	port := s.srv.Listener.Addr().String()[strings.LastIndex(s.srv.Listener.Addr().String(), ":")+1:]
	for _, want := range []string{
		"HTTP_PROXY=<unset>\n", // httpoxy
		"HTTP_X_USER=real\n",   // the "_" spelling is dropped
		"HTTP_ACCEPT=a, b\n",
		"HTTP_COOKIE=a=1; b=2\n",
		"QUERY_STRING=x=1&p=HTTP_PROXY",
		"REQUEST_METHOD=GET\n",
		"GATEWAY_INTERFACE=CGI/1.1\n",
		"APP_ENV=test\n",
		"REMOTE_ADDR=127.0.0.1\n",
		"SERVER_PORT=" + port + "\n",
		"HTTP_HOST=127.0.0.1:" + port + "\n",
		"PATH_TRANSLATED=" + s.h.root + "/pi\n",
		"DOCUMENT_ROOT=" + s.h.root + "\n",
		"REDIRECT_STATUS=200\n",
		"CONTENT_LENGTH=<unset>\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("params lack %q:\n%s", want, body)
		}
	}
}

func TestResponseHeader(t *testing.T) {
	fake := newFakeServer(t, func(req *fakeReq) error {
		switch req.params["PATH_INFO"] {
		case "/created":
			return req.respond("Status: 201 Created\r\nContent-Type: application/json\r\nX-A: 1\r\nX-A: 2\r\nConnection: close\r\n\r\n{}")
		case "/redirect":
			return req.respond("Location: /elsewhere\r\n\r\n")
		case "/notype":
			return req.respond("Status: 200\r\n\r\n<html>")
		case "/bad":
			return req.respond("this is not a header\r\n\r\n")
		case "/empty":
			return req.end()
		case "/stderr":
			if err := req.stderr("PHP Warning: oops\nsecond line\n"); err != nil {
				return err
			}
			return req.respond("Content-Type: text/plain\r\n\r\nok")
		}
		return req.respond("Content-Type: text/plain\r\n\r\n")
	})
	s := newSetup(t, fake, testRoot(t), nil)
	resp, body := s.get(t, "/app/a.php/created")
	if resp.StatusCode != 201 || body != "{}" || resp.Header.Get("Content-Type") != "application/json" ||
		strings.Join(resp.Header.Values("X-A"), ",") != "1,2" || resp.Close {
		t.Errorf("created: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	r2, _ := s.get(t, "/app/a.php/redirect")
	if r2.StatusCode != 302 || r2.Header.Get("Location") != "/elsewhere" {
		t.Errorf("Location without Status = %d %q, want 302 /elsewhere", r2.StatusCode, r2.Header.Get("Location"))
	}
	if resp, _ := s.get(t, "/app/a.php/notype"); resp.Header.Get("Content-Type") != "" {
		t.Errorf("Content-Type sniffed: %q", resp.Header.Get("Content-Type"))
	}
	for _, p := range []string{"/app/a.php/bad", "/app/a.php/empty"} {
		if resp, _ := s.get(t, p); resp.StatusCode != 502 {
			t.Errorf("%s = %d, want 502", p, resp.StatusCode)
		}
	}
	if !strings.Contains(s.logs.String(), "bad response") {
		t.Errorf("no log line for the bad response:\n%s", s.logs.String())
	}
	if _, body := s.get(t, "/app/a.php/stderr"); body != "ok" {
		t.Errorf("stderr response body %q", body)
	}
	for _, want := range []string{
		`msg="fastcgi: stderr" script=/app/a.php line="PHP Warning: oops"`,
		`msg="fastcgi: stderr" script=/app/a.php line="second line"`,
	} {
		if !strings.Contains(s.logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, s.logs.String())
		}
	}
}

func TestKeepAliveReuse(t *testing.T) {
	fake := newFakeServer(t, func(req *fakeReq) error {
		if !req.keepConn {
			return fmt.Errorf("FCGI_KEEP_CONN not set")
		}
		return req.respond("Content-Type: text/plain\r\n\r\n" + req.params["QUERY_STRING"])
	})
	s := newSetup(t, fake, testRoot(t), func(c *config.FastCGI) { c.MaxConns = 3 })
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				q := fmt.Sprintf("g%di%d", g, i)
				if _, body := s.get(t, "/app/a.php?"+q); body != q {
					t.Errorf("got %q, want %q", body, q)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := fake.conns.Load(); n > 3 {
		t.Errorf("180 requests opened %d connections, want at most max_conns 3", n)
	}
	if n := fake.maxOpen.Load(); n > 3 {
		t.Errorf("%d connections open at once, want at most 3", n)
	}
}

// TestStrayBytes: a responder that writes past FCGI_END_REQUEST must not
// answer the next request with those bytes.
func TestStrayBytes(t *testing.T) {
	strayed := make(chan struct{}, 1)
	fake := newFakeServer(t, func(req *fakeReq) error {
		q := req.params["QUERY_STRING"]
		if err := req.respond("Content-Type: text/plain\r\n\r\n" + q); err != nil {
			return err
		}
		if q == "stray" {
			// A second, unasked-for response on the same connection,
			// after portico has taken the first one as complete.
			time.Sleep(20 * time.Millisecond)
			err := req.respond("Content-Type: text/plain\r\n\r\nSTOLEN")
			strayed <- struct{}{}
			return err
		}
		return nil
	})
	s := newSetup(t, fake, testRoot(t), func(c *config.FastCGI) { c.MaxConns = 1 })
	for i := 0; i < 5; i++ {
		if _, body := s.get(t, "/app/a.php?stray"); body != "stray" {
			t.Fatalf("got %q, want stray", body)
		}
		<-strayed // the stray bytes are on their way before the next request
		if _, body := s.get(t, "/app/a.php?next"); body != "next" {
			t.Fatalf("the next request got %q, want next", body)
		}
	}
	if n := fake.conns.Load(); n < 5 {
		t.Errorf("%d connections for 5 stray responses: a dirty connection was reused", n)
	}
}

// TestDroppedIdleConnection: php-fpm closing a kept connection (a child
// recycled) costs nothing: the next request gets a fresh one.
func TestDroppedIdleConnection(t *testing.T) {
	fake := newFakeServer(t, func(req *fakeReq) error {
		if err := req.respond("Content-Type: text/plain\r\n\r\nok"); err != nil {
			return err
		}
		return errCloseConn
	})
	s := newSetup(t, fake, testRoot(t), nil)
	for i := 0; i < 10; i++ {
		if resp, body := s.get(t, "/app/a.php"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if strings.Contains(s.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", s.logs.String())
	}
}

// chunksAfterEach is a responder that sends three chunks, each only once
// the test has seen the one before (a receive on next).
func chunksAfterEach(next chan struct{}) func(*fakeReq) error {
	return func(req *fakeReq) error {
		if err := req.stdout("Content-Type: text/plain\r\n\r\n"); err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			if err := req.stdout(fmt.Sprintf("chunk%d\n", i)); err != nil {
				return err
			}
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				return fmt.Errorf("the client never saw chunk%d", i)
			}
		}
		return req.end()
	}
}

// TestStreamedResponse: output the responder sends is at the client
// before the responder goes on.
func TestStreamedResponse(t *testing.T) {
	next := make(chan struct{})
	fake := newFakeServer(t, chunksAfterEach(next))
	s := newSetup(t, fake, testRoot(t), nil)
	resp, err := http.Get(s.srv.URL + "/app/a.php")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("chunk%d\n", i) {
			t.Fatalf("line %d: %q %v", i, line, err)
		}
		next <- struct{}{}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("trailing %q", rest)
	}
}

// TestRequestBody: bodies of known length are streamed, chunked ones
// spooled to learn CONTENT_LENGTH; both arrive whole.
func TestRequestBody(t *testing.T) {
	fake := newFakeServer(t, func(req *fakeReq) error {
		return req.respond(fmt.Sprintf("Content-Type: text/plain\r\n\r\n%s %d %s", req.params["CONTENT_LENGTH"], len(req.stdin), req.params["CONTENT_TYPE"]))
	})
	s := newSetup(t, fake, testRoot(t), nil)
	big := strings.Repeat("0123456789abcdef", 20000) // 320000 bytes, many records
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big[:1000]), strings.NewReader(big[1000:]))
		}
		req, _ := http.NewRequest("POST", s.srv.URL+"/app/a.php", body)
		req.Header.Set("Content-Type", "application/octet-stream")
		if chunked {
			req.ContentLength = -1
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "320000 320000 application/octet-stream"; string(got) != want {
			t.Errorf("chunked=%v: got %q, want %q", chunked, got, want)
		}
	}
}

func TestFailures(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		fake := newFakeServer(t, echoParams)
		fake.ln.Close()
		s := newSetup(t, fake, testRoot(t), nil)
		if resp, _ := s.get(t, "/app/a.php"); resp.StatusCode != 502 {
			t.Errorf("responder down: %d, want 502", resp.StatusCode)
		}
		if !strings.Contains(s.logs.String(), "cannot reach the responder") {
			t.Errorf("no log line:\n%s", s.logs.String())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		fake := newFakeServer(t, func(req *fakeReq) error {
			<-release
			return errCloseConn
		})
		s := newSetup(t, fake, testRoot(t), func(c *config.FastCGI) { c.ReadTimeout = config.Duration(200 * time.Millisecond) })
		if resp, _ := s.get(t, "/app/a.php"); resp.StatusCode != 504 {
			t.Errorf("silent responder: %d, want 504", resp.StatusCode)
		}
	})
	t.Run("cut", func(t *testing.T) {
		fake := newFakeServer(t, func(req *fakeReq) error {
			_ = req.stdout("Content-Type: text/plain\r\n\r\npartial")
			return errCloseConn
		})
		s := newSetup(t, fake, testRoot(t), nil)
		resp, err := http.Get(s.srv.URL + "/app/a.php")
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("a response cut by the responder ended as if complete")
		}
	})
	t.Run("busy", func(t *testing.T) {
		release := make(chan struct{})
		fake := newFakeServer(t, func(req *fakeReq) error {
			<-release
			return req.respond("Content-Type: text/plain\r\n\r\nok")
		})
		s := newSetup(t, fake, testRoot(t), func(c *config.FastCGI) {
			c.MaxConns = 1
			c.ConnectTimeout = config.Duration(100 * time.Millisecond)
		})
		done := make(chan int)
		go func() {
			resp, _ := s.get(t, "/app/a.php")
			done <- resp.StatusCode
		}()
		for fake.active.Load() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if resp, _ := s.get(t, "/app/a.php"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("pool full: %d, want 503 with Retry-After", resp.StatusCode)
		}
		close(release)
		if code := <-done; code != 200 {
			t.Errorf("first request: %d", code)
		}
	})
}

// TestClientGone: a client that hangs up releases the connection at once
// (it is closed, never reused mid-response).
func TestClientGone(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	fake := newFakeServer(t, func(req *fakeReq) error {
		if req.params["QUERY_STRING"] == "slow" {
			_ = req.stdout("Content-Type: text/plain\r\n\r\nstart")
			select { // a script that runs on and on
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return errCloseConn
		}
		return req.respond("Content-Type: text/plain\r\n\r\nok")
	})
	s := newSetup(t, fake, testRoot(t), func(c *config.FastCGI) {
		c.MaxConns = 1
		c.ConnectTimeout = config.Duration(5 * time.Second)
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/app/a.php?slow", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	_, _ = io.ReadFull(resp.Body, buf)
	cancel()
	resp.Body.Close()
	// The only connection is free again at once, not when the script
	// ends (10s) nor after connect_timeout (5s).
	start := time.Now()
	if _, body := s.get(t, "/app/a.php"); body != "ok" {
		t.Errorf("after a client hung up: %q", body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the next request waited %v for the abandoned connection", d)
	}
}

// brokenBody yields some bytes, then fails, as a client body that stalls
// past the server's read timeout does.
type brokenBody struct{ n int }

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.n > 0 {
		n := min(len(p), b.n)
		b.n -= n
		return n, nil
	}
	return 0, fmt.Errorf("client body read timeout")
}
func (b *brokenBody) Close() error { return nil }

// TestBrokenRequestBody: a body that fails half-way is answered 400 at
// once, not after read_timeout with the responder waiting for the rest.
func TestBrokenRequestBody(t *testing.T) {
	fake := newFakeServer(t, echoParams) // waits for the whole stdin
	s := newSetup(t, fake, testRoot(t), func(c *config.FastCGI) { c.ReadTimeout = config.Duration(10 * time.Second) })
	req := httptest.NewRequest("POST", "/app/a.php", &brokenBody{n: 1000})
	req.ContentLength = 5000
	w := httptest.NewRecorder()
	start := time.Now()
	s.h.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", w.Code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v: waited for the responder's timeout", d)
	}
}

// fastFiles is a static stand-in that has a fast path for hits.
type fastFiles struct{ fast []string }

func (f *fastFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {}
func (f *fastFiles) ServeFastHit(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	f.fast = append(f.fast, req.Path)
	return true
}

// TestServeFast: the files-only fast path (a compressed route's) takes
// static files; scripts, pretty URLs and script sources never.
func TestServeFast(t *testing.T) {
	root := testRoot(t)
	cfg := config.FastCGI{Upstream: "unix:/nonexistent.sock", Root: root}
	cfg.SetDefaults()
	files := &fastFiles{}
	h, err := New(cfg, Options{Prefix: "/app", Files: files})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"/app/style.css":             true,
		"/app/upload/evil.jpg":       true,
		"/app/a.php":                 false,
		"/app/X.PHP":                 false,
		"/app/posts/42":              false,
		"/app/missing.css":           false, // the front controller's
		"/app/style.css/x":           false,
		"/app/a.php/style.css":       false,
		"/app/upload/evil.jpg/x.php": false,
		"/app/.env":                  false,
	} {
		files.fast = nil
		if got := h.FilesOnly().ServeFast(&fastpath.Request{Path: path}, nil); got != want || (len(files.fast) == 1) != want {
			t.Errorf("ServeFast(%s) = %v (static fast path called %d times), want %v", path, got, len(files.fast), want)
		}
	}
}
