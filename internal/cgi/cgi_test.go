package cgi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/proctest"
)

// RFC 3875 section 4.1: every meta-variable, from the real connection.
func TestMetaVariables(t *testing.T) {
	root := newRoot(t)
	script := linkHelper(t, root, "env")
	cfg := testCfg(root)
	cfg.Env["APP_ENV"] = "prod"
	f := newFixture(t, cfg, Options{})
	t.Setenv("PORTICO_SECRET", "leak")

	_, port, _ := net.SplitHostPort(f.srv.Listener.Addr().String())
	rep := f.report(t, "POST", "/cgi-bin/env/more/path?a=1&b=%20x", strings.NewReader("hello"),
		"Host", "x.example:9999",
		"Content-Type", "text/plain",
		"X-Custom", "v1",
		"Cookie", "a=1", "Cookie", "b=2",
		"Authorization", "Basic dXNlcjpwYXNz",
	)
	want := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "portico",
		"REQUEST_METHOD":    "POST",
		"QUERY_STRING":      "a=1&b=%20x",
		"SCRIPT_NAME":       "/cgi-bin/env",
		"SCRIPT_FILENAME":   script,
		"PATH_INFO":         "/more/path",
		"PATH_TRANSLATED":   root + "/more/path",
		"REQUEST_URI":       "/cgi-bin/env/more/path?a=1&b=%20x",
		"DOCUMENT_ROOT":     root,
		"CONTENT_LENGTH":    "5",
		"CONTENT_TYPE":      "text/plain",
		"REMOTE_ADDR":       "127.0.0.1",
		"REMOTE_HOST":       "127.0.0.1",
		"SERVER_NAME":       "x.example",
		"SERVER_PORT":       port, // where it arrived, not Host's 9999
		"SERVER_ADDR":       "127.0.0.1",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REQUEST_SCHEME":    "http",
		"AUTH_TYPE":         "Basic",
		"REDIRECT_STATUS":   "200",
		"HTTP_HOST":         "x.example:9999",
		"HTTP_X_CUSTOM":     "v1",
		"HTTP_COOKIE":       "a=1; b=2",
		"APP_ENV":           "prod",
		"PATH":              os.Getenv("PATH"),
	}
	for k, v := range want {
		if got, ok := rep.Env[k]; !ok || got != v {
			t.Errorf("%s: got %q (set %v), want %q", k, got, ok, v)
		}
	}
	if rep.Env["REMOTE_PORT"] == "" {
		t.Errorf("REMOTE_PORT not set")
	}
	// portico authenticates no one: REMOTE_USER would be client-asserted.
	for _, k := range []string{"REMOTE_USER", "HTTPS", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "PORTICO_SECRET"} {
		if v, ok := rep.Env[k]; ok {
			t.Errorf("%s set to %q, want unset", k, v)
		}
	}
	// Every run's processes carry its token (descendants.go).
	if tok := rep.Env[tokenEnv]; !strings.HasPrefix(tok, f.h.id+"-") {
		t.Errorf("%s = %q, want the handler's id %s and a run number", tokenEnv, tok, f.h.id)
	}
	// The environment is an allow-list.
	allowed := map[string]bool{helperEnv: true, "REMOTE_PORT": true, tokenEnv: true}
	for k := range want {
		allowed[k] = true
	}
	for k := range rep.Env {
		if !allowed[k] && !strings.HasPrefix(k, "HTTP_") {
			t.Errorf("unexpected variable %s=%q", k, rep.Env[k])
		}
	}
	if len(rep.Args) != 1 || rep.Args[0] != script {
		t.Errorf("argv: got %q, want [%q]", rep.Args, script)
	}
	if rep.Cwd != root {
		t.Errorf("cwd: got %q, want %q", rep.Cwd, root)
	}
}

// A GET without a body has no CONTENT_LENGTH and an empty PATH_INFO, and no
// PATH_TRANSLATED (RFC 3875 sections 4.1.2, 4.1.6).
func TestMetaVariablesNoBody(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "env")
	f := newFixture(t, testCfg(root), Options{})
	rep := f.report(t, "GET", "/cgi-bin/env", nil, "Host", "[::1]:81")
	for _, k := range []string{"CONTENT_LENGTH", "CONTENT_TYPE", "PATH_TRANSLATED", "AUTH_TYPE"} {
		if v, ok := rep.Env[k]; ok {
			t.Errorf("%s = %q, want unset", k, v)
		}
	}
	if v, ok := rep.Env["PATH_INFO"]; !ok || v != "" {
		t.Errorf("PATH_INFO = %q (set %v), want empty", v, ok)
	}
	if got := rep.Env["SERVER_NAME"]; got != "::1" {
		t.Errorf("SERVER_NAME: got %q, want %q", got, "::1")
	}
}

// HTTPS=on under TLS, over HTTP/2; a body without length (HTTP/2 has no
// chunked encoding but the same unknown length) is spooled.
func TestTLSAndHTTP2(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "env")
	linkHelper(t, root, "count")
	h, err := New(testCfg(root), Options{Prefix: "/cgi-bin"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := srv.Client()
	c.Timeout = 10 * time.Second

	resp, err := c.Get(srv.URL + "/cgi-bin/env")
	if err != nil {
		t.Fatal(err)
	}
	var rep helperReport
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("proto: got %s, want HTTP/2", resp.Proto)
	}
	for k, v := range map[string]string{"HTTPS": "on", "SERVER_PROTOCOL": "HTTP/2.0", "REQUEST_SCHEME": "https"} {
		if rep.Env[k] != v {
			t.Errorf("%s: got %q, want %q", k, rep.Env[k], v)
		}
	}

	req, _ := http.NewRequest("POST", srv.URL+"/cgi-bin/count", io.LimitReader(zeros{}, 100000))
	req.ContentLength = -1
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "n=100000" {
		t.Errorf("h2 body of unknown length: got %q, want n=100000", b)
	}
}

// httpoxy and header aliasing.
func TestHeaderFiltering(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "env")
	f := newFixture(t, testCfg(root), Options{})
	req, _ := http.NewRequest("GET", f.srv.URL+"/cgi-bin/env", nil)
	req.Header["Proxy"] = []string{"http://evil:1"}
	req.Header["X-Remote-User"] = []string{"alice"}
	req.Header["X_Remote_User"] = []string{"mallory"}
	req.Header["X.Dot"] = []string{"dot"}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep helperReport
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if v, ok := rep.Env["HTTP_PROXY"]; ok {
		t.Errorf("HTTP_PROXY = %q: httpoxy", v)
	}
	if got := rep.Env["HTTP_X_REMOTE_USER"]; got != "alice" {
		t.Errorf("HTTP_X_REMOTE_USER: got %q, want %q (header with _ must be dropped)", got, "alice")
	}
	for k := range rep.Env {
		if strings.Contains(k, ".") {
			t.Errorf("variable %q from a header with an odd name", k)
		}
	}
}

func TestHeaderEnvName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"User-Agent", "HTTP_USER_AGENT", true},
		{"x-forwarded-for", "HTTP_X_FORWARDED_FOR", true},
		{"Proxy", "", false},
		{"proxy", "", false},
		{"X_Foo", "", false},
		{"Content-Type", "", false},
		{"Content-Length", "", false},
		{"X.Y", "", false},
		{"", "", false},
	} {
		got, ok := headerEnvName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("headerEnvName(%q): got %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNewErrors(t *testing.T) {
	root := newRoot(t)
	file := writeFile(t, root, "f", "x", 0o644)
	for _, tc := range []struct {
		name string
		cfg  config.CGI
		want string
	}{
		{"no root", config.CGI{}, "root is required"},
		{"missing root", config.CGI{Root: root + "/nope"}, "no such file"},
		{"root is a file", config.CGI{Root: file}, "not a folder"},
		{"unknown user", config.CGI{Root: root, User: "no-such-user-xyz"}, "no-such-user-xyz"},
		{"reserved env", config.CGI{Root: root, Env: map[string]string{"REMOTE_ADDR": "1.2.3.4"}}, "REMOTE_ADDR"},
		{"HTTP_ env", config.CGI{Root: root, Env: map[string]string{"HTTP_X": "1"}}, "HTTP_X"},
		{"bad env name", config.CGI{Root: root, Env: map[string]string{"A=B": "1"}}, "invalid variable"},
		{"missing interpreter", config.CGI{Root: root, Interpreters: map[string]string{".zz": "no-such-interp-xyz"}}, "no-such-interp-xyz"},
		{"bad extension", config.CGI{Root: root, Interpreters: map[string]string{"py": "sh"}}, "extension"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "unknown user" && os.Geteuid() != 0 {
				t.Skip("the user is only looked up when running as root")
			}
			_, err := New(tc.cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// Zero values get the documented defaults.
func TestNewDefaults(t *testing.T) {
	h, err := New(config.CGI{Root: newRoot(t)}, Options{Prefix: "/cgi-bin/"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if h.timeout != defaultTimeout || cap(h.sem) != defaultMaxProcesses || !h.spool || h.prefix != "/cgi-bin" {
		t.Errorf("defaults: timeout %v, max %d, spool %v, prefix %q", h.timeout, cap(h.sem), h.spool, h.prefix)
	}
	if os.Geteuid() == 0 && (h.cred == nil || h.cred.Uid == 0) {
		t.Errorf("running as root: scripts must not run as root by default")
	}
}

// When portico runs as root, scripts run as cfg.User (default nobody),
// with no supplementary groups of root.
func TestRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := newRoot(t)
	writeFile(t, root, "id.sh", "#!/bin/sh\necho 'Content-Type: text/plain'\necho\nid -u; id -g; id -G\n", 0o755)
	f := newFixture(t, testCfg(root), Options{})
	res := f.get(t, "/cgi-bin/id.sh")
	if got := strings.Fields(res.body); len(got) != 3 || got[0] != "65534" || got[2] != got[1] {
		t.Errorf("id as default user: got %q, want uid 65534 and only its own group", res.body)
	}

	cfg := testCfg(root)
	cfg.User = "root"
	f2 := newFixture(t, cfg, Options{})
	if res := f2.get(t, "/cgi-bin/id.sh"); !strings.HasPrefix(res.body, "0\n") {
		t.Errorf("id with user root: got %q", res.body)
	}
}

// Files that are not executable run through an interpreter for their
// extension: argv = [interpreter, script], nothing from the request.
func TestInterpreterArgv(t *testing.T) {
	root := newRoot(t)
	bin := newRoot(t)
	interp := linkHelper(t, bin, "interp")
	script := writeFile(t, root, "page.TT", "not executable", 0o644)
	writeFile(t, root, "other.txt", "SOURCE", 0o644)
	cfg := testCfg(root)
	cfg.Interpreters = map[string]string{".tt": interp}
	f := newFixture(t, cfg, Options{})
	rep := f.report(t, "GET", "/cgi-bin/page.TT/x?-s+-d+foo=bar", nil)
	if len(rep.Args) != 2 || rep.Args[0] != interp || rep.Args[1] != script {
		t.Errorf("argv: got %q, want [%q %q]", rep.Args, interp, script)
	}
	if res := f.get(t, "/cgi-bin/other.txt"); res.status != 403 || strings.Contains(res.body, "SOURCE") {
		t.Errorf("no interpreter: got %d %q, want 403 without the source", res.status, res.body)
	}
}

// Interpreters named without a path are looked up in the scripts' PATH.
func TestInterpreterPHPAndPython(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "hello.php", "<?php header('X-Php: yes'); echo 'php says ', htmlspecialchars($_GET['q'] ?? ''), ' ', $_SERVER['PATH_INFO'] ?? '', ' argc=', $_SERVER['argc'] ?? 'none'; ?>", 0o644)
	writeFile(t, root, "hello.py", "import os\nprint('Content-Type: text/plain')\nprint()\nprint('py says', os.environ['QUERY_STRING'])\n", 0o644)
	cfg := testCfg(root)
	cfg.Env["PATH"] = "/usr/bin:/bin"
	cfg.Interpreters = map[string]string{".php": "php-cgi", ".py": "python3"}
	if _, err := os.Stat("/usr/bin/php-cgi"); err != nil {
		delete(cfg.Interpreters, ".php")
	}
	f := newFixture(t, cfg, Options{})
	if _, ok := cfg.Interpreters[".php"]; ok {
		res := f.get(t, "/cgi-bin/hello.php/pi?q=<b>")
		if res.status != 200 || !strings.HasPrefix(res.body, "php says &lt;b&gt; /pi") || res.header.Get("X-Php") != "yes" {
			t.Errorf("php-cgi: got %d %q %v\nlogs:\n%s", res.status, res.body, res.header, f.logs)
		}
		// CVE-2012-1823: a query without "=" must not become php-cgi options.
		res = f.get(t, "/cgi-bin/hello.php?-s")
		if strings.Contains(res.body, "<?php") || strings.Contains(res.body, "<code>") {
			t.Errorf("php-cgi ?-s disclosed the source: %q", res.body)
		}
	} else {
		t.Log("php-cgi not installed: skipped that part")
	}
	if res := f.get(t, "/cgi-bin/hello.py?x=1"); res.status != 200 || res.body != "py says x=1\n" {
		t.Errorf("python3: got %d %q\nlogs:\n%s", res.status, res.body, f.logs)
	}
}

// cfg.Env reaches the script, and PATH can be replaced.
func TestConfigEnv(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "env")
	cfg := testCfg(root)
	cfg.Env["PATH"] = "/opt/x:/usr/bin"
	cfg.Env["DOCUMENT_ROOT"] = "/srv/www"
	cfg.Env["HTTP_PROXY_OK"] = "1"
	if _, err := New(cfg, Options{}); err == nil {
		t.Fatalf("HTTP_ prefixed cfg.Env accepted")
	}
	delete(cfg.Env, "HTTP_PROXY_OK")
	f := newFixture(t, cfg, Options{})
	rep := f.report(t, "GET", "/cgi-bin/env/p", nil)
	if rep.Env["PATH"] != "/opt/x:/usr/bin" || rep.Env["DOCUMENT_ROOT"] != "/srv/www" || rep.Env["PATH_TRANSLATED"] != "/srv/www/p" {
		t.Errorf("PATH %q DOCUMENT_ROOT %q PATH_TRANSLATED %q", rep.Env["PATH"], rep.Env["DOCUMENT_ROOT"], rep.Env["PATH_TRANSLATED"])
	}
}

// A 50 MB upload streams through a pipe: the handler's memory stays flat.
func TestLargeUploadStreams(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "count")
	f := newFixture(t, testCfg(root), Options{})
	const size = 50 << 20
	f.get(t, "/cgi-bin/count") // warm up connections and pools

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest("POST", f.srv.URL+"/cgi-bin/count", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if want := "n=" + strconv.Itoa(size); string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d bytes for a %d byte upload: the body is buffered, not streamed", grew, size)
	}
}

// Chunked bodies are spooled to learn CONTENT_LENGTH, or refused with 411.
func TestChunkedBody(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "env")
	linkHelper(t, root, "count")
	f := newFixture(t, testCfg(root), Options{})

	chunked := func(target string, n int64) result {
		req, _ := http.NewRequest("POST", f.srv.URL+target, io.LimitReader(zeros{}, n))
		req.ContentLength = -1
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if len(resp.TransferEncoding) > 0 {
			t.Log("transfer encoding", resp.TransferEncoding)
		}
		b, _ := io.ReadAll(resp.Body)
		return result{resp.StatusCode, resp.Header, string(b)}
	}
	res := chunked("/cgi-bin/env", 12345)
	var rep helperReport
	json.Unmarshal([]byte(res.body), &rep)
	if rep.Env["CONTENT_LENGTH"] != "12345" {
		t.Errorf("CONTENT_LENGTH of a chunked body: got %q, want 12345", rep.Env["CONTENT_LENGTH"])
	}
	if res := chunked("/cgi-bin/count", 3<<20); res.body != "n="+strconv.Itoa(3<<20) {
		t.Errorf("chunked body: got %q", res.body)
	}

	off := false
	cfg := testCfg(root)
	cfg.SpoolChunked = &off
	f = newFixture(t, cfg, Options{})
	if res := chunked("/cgi-bin/count", 10); res.status != http.StatusLengthRequired {
		t.Errorf("spool_chunked=false: got %d, want 411", res.status)
	}
}

// The server's body limit (http.MaxBytesReader) becomes 413, and the
// script, which saw a cut body, is stopped rather than trusted.
func TestBodyLimit(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "count")
	h, err := New(testCfg(root), Options{Prefix: "/cgi-bin"})
	if err != nil {
		t.Fatal(err)
	}
	h.grace = 300 * time.Millisecond
	defer h.Close(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	for _, cl := range []int64{1 << 20, -1} {
		req, _ := http.NewRequest("POST", srv.URL+"/cgi-bin/count", io.LimitReader(zeros{}, 1<<20))
		req.ContentLength = cl
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("content-length %d over the limit: got %d %q, want 413", cl, resp.StatusCode, b)
		}
	}
	// Under the limit all is well.
	resp, err := client.Post(srv.URL+"/cgi-bin/count", "text/plain", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "n=3" {
		t.Errorf("small body: got %q", b)
	}
}

// At most MaxProcesses scripts at once; beyond: 503 with Retry-After.
func TestMaxProcesses(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "sleepy")
	linkHelper(t, root, "env")
	cfg := testCfg(root)
	cfg.MaxProcesses = 1
	f := newFixture(t, cfg, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	pid, resp := f.readFirstLine(t, ctx, "/cgi-bin/sleepy")
	res := f.get(t, "/cgi-bin/env")
	if res.status != 503 || res.header.Get("Retry-After") == "" {
		t.Errorf("second script: got %d, Retry-After %q, want 503 with Retry-After", res.status, res.header.Get("Retry-After"))
	}
	cancel()
	resp.Body.Close()
	n, _ := strconv.Atoi(pid)
	proctest.WaitGone(t, n, 5*time.Second)
	// The slot comes back.
	deadline := time.Now().Add(5 * time.Second)
	for f.get(t, "/cgi-bin/env").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("slot never released")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stderr goes to the error log, line by line, tagged with the script; long
// lines are cut and floods are rate limited.
func TestStderrLogged(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "stderr")
	f := newFixture(t, testCfg(root), Options{})
	if res := f.get(t, "/cgi-bin/stderr"); res.body != "ok" {
		t.Fatalf("got %q", res.body)
	}
	logs := f.logs.String()
	for _, want := range []string{
		`msg="cgi stderr" script=/cgi-bin/stderr line="first line"`,
		`line="second line"`,
		`truncated=true`,
		`dropped=`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs, strings.Repeat("x", maxLogLine+1)) {
		t.Errorf("a stderr line longer than %d bytes was logged whole", maxLogLine)
	}
	if n := strings.Count(logs, "flood "); n > logBurst+10 {
		t.Errorf("%d flood lines logged, want at most about %d", n, logBurst)
	}
	if t.Failed() {
		t.Log(logs[:min(len(logs), 2000)])
	}
}

// The script's body reaches the client while the script still runs.
func TestStreamingBody(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "stream")
	f := newFixture(t, testCfg(root), Options{})
	start := time.Now()
	line, resp := f.readFirstLine(t, context.Background(), "/cgi-bin/stream")
	defer resp.Body.Close()
	if line != "first" {
		t.Fatalf("first line: got %q", line)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("first bytes after %v: buffered until the script ended (3s)", d)
	}
}

// Many sequential and concurrent runs leave no descriptor and no zombie.
func TestNoLeaks(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "env")
	writeFile(t, root, "bad.sh", "#!/bin/sh\necho nonsense\n", 0o755)
	writeFile(t, root, "fail.sh", "#!/bin/sh\nexit 1\n", 0o755)
	cfg := testCfg(root)
	h, err := New(cfg, Options{Prefix: "/cgi-bin"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	f := &fixture{h: h, srv: srv, logs: &enginetest.SyncBuffer{}}
	f.get(t, "/cgi-bin/env") // warm up
	srv.CloseClientConnections()
	client.CloseIdleConnections()
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	before := fds()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range []string{"/cgi-bin/env", "/cgi-bin/bad.sh", "/cgi-bin/fail.sh", "/cgi-bin/nope"} {
				req, _ := http.NewRequest("POST", srv.URL+p+"?i="+strconv.Itoa(i), strings.NewReader("body"))
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	srv.CloseClientConnections()
	client.CloseIdleConnections()
	srv.Close()
	h.Close(context.Background())
	deadline := time.Now().Add(3 * time.Second)
	for fds() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := fds(); after > before {
		t.Errorf("descriptors: %d before, %d after", before, after)
	}
	if z := proctest.Zombies(); len(z) > 0 {
		t.Errorf("zombie children: %v", z)
	}
}

// A script inherits stdin, stdout and stderr, and no other pipe or socket
// of portico's (listeners, client connections, other scripts' pipes).
func TestNoInheritedDescriptors(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "fds.sh", "#!/bin/sh\necho 'Content-Type: text/plain'\necho\nls -l /proc/$$/fd\n", 0o755)
	linkHelper(t, root, "sleepy")
	f := newFixture(t, testCfg(root), Options{})
	// Another script running at the same time has pipes open in portico.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, resp := f.readFirstLine(t, ctx, "/cgi-bin/sleepy")
	defer resp.Body.Close()
	res := f.do(t, "POST", "/cgi-bin/fds.sh", strings.NewReader("x"))
	n := 0
	for _, line := range strings.Split(res.body, "\n") {
		fields := strings.Fields(line)
		i := slices.Index(fields, "->")
		if i < 1 {
			continue
		}
		n++
		fd, _ := strconv.Atoi(fields[i-1])
		target := strings.Join(fields[i+1:], " ")
		if fd > 2 && (strings.HasPrefix(target, "pipe:") || strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "anon_inode:")) {
			t.Errorf("script inherited fd %d -> %s", fd, target)
		}
	}
	if n < 3 {
		t.Fatalf("listing: %q", res.body)
	}
}

// Helpers for response tests: a shell script per case.
func TestResponses(t *testing.T) {
	root := newRoot(t)
	for _, tc := range []struct {
		name, script   string
		status         int
		body           string
		header, absent []string // "Name: value" present / names absent
		log            string
	}{
		{"lf", `printf 'Content-Type: text/plain\n\nhello'`, 200, "hello", []string{"Content-Type: text/plain"}, nil, ""},
		{"crlf", `printf 'Content-Type: text/html\r\nX-A: 1\r\n\r\nhi'`, 200, "hi", []string{"Content-Type: text/html", "X-A: 1"}, nil, ""},
		{"status", `printf 'Status: 404 Not Here\nContent-Type: text/plain\n\ngone'`, 404, "gone", nil, nil, ""},
		{"status only", `printf 'Status: 204\n\n'`, 204, "", nil, nil, ""},
		{"multi header", `printf 'Content-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n'`, 200, "", []string{"Set-Cookie: a=1", "Set-Cookie: b=2"}, nil, ""},
		{"hop-by-hop dropped", `printf 'Content-Type: text/plain\nConnection: close\nTransfer-Encoding: chunked\nKeep-Alive: 1\nUpgrade: x\n\nok'`, 200, "ok", nil, []string{"Upgrade", "Keep-Alive"}, ""},
		{"content-length kept", `printf 'Content-Type: text/plain\nContent-Length: 2\n\nok'`, 200, "ok", []string{"Content-Length: 2"}, nil, ""},
		{"client redirect", `printf 'Location: https://example.com/x\n\n'`, 302, "", []string{"Location: https://example.com/x"}, nil, ""},
		{"client redirect with status", `printf 'Status: 301 Moved\nLocation: https://example.com/y\nContent-Type: text/html\n\n<a>moved</a>'`, 301, "<a>moved</a>", []string{"Location: https://example.com/y"}, nil, ""},
		{"network-path location is not local", `printf 'Location: //evil.example/\n\n'`, 302, "", []string{"Location: //evil.example/"}, nil, ""},
		{"no type: no sniffing", `printf 'Status: 200\n\n<html>'`, 200, "<html>", nil, []string{"Content-Type"}, ""},
		{"garbage", `echo nonsense`, 502, "", nil, nil, "line without a field name"},
		{"no cgi field", `printf 'X-Only: 1\n\nbody'`, 502, "", nil, nil, "no Content-Type, Location or Status"},
		{"empty block", `printf '\nbody'`, 502, "", nil, nil, "empty header block"},
		{"bad status", `printf 'Status: abc\nContent-Type: text/plain\n\n'`, 502, "", nil, nil, "invalid Status"},
		{"status out of range", `printf 'Status: 999\nContent-Type: text/plain\n\n'`, 502, "", nil, nil, "out of range"},
		{"continuation", `printf 'Content-Type: text/plain\n folded\n\n'`, 502, "", nil, nil, "continuation"},
		{"no end of headers", `printf 'Content-Type: text/plain\n'`, 502, "", nil, nil, "ended before the end of the header block"},
		{"no output exit 0", `exit 0`, 502, "", nil, nil, "ended before"},
		{"no output exit 3", `echo oops >&2; exit 3`, 500, "", nil, nil, "exit=3"},
		{"huge header", `printf 'Content-Type: text/plain\n'; i=0; while [ $i -lt 3000 ]; do printf 'X-Pad-%d: %s\n' $i aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; i=$((i+1)); done; printf '\n'`, 502, "", nil, nil, "longer than"},
		{"endless header line", `printf 'Content-Type: text/plain\nX: '; yes | tr -d '\n'`, 502, "", nil, nil, "longer than"},
		{"fails after answering", `printf 'Content-Type: text/plain\n\npartial'; exit 4`, 200, "partial", nil, nil, "exited with an error after answering"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-") + ".sh"
			writeFile(t, root, name, "#!/bin/sh\n"+tc.script+"\n", 0o755)
			f := newFixture(t, testCfg(root), Options{})
			start := time.Now()
			res := f.get(t, "/cgi-bin/"+name)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if res.status != tc.status {
				t.Errorf("status: got %d, want %d (body %q)", res.status, tc.status, res.body)
			}
			if tc.status < 500 && res.body != tc.body {
				t.Errorf("body: got %q, want %q", res.body, tc.body)
			}
			if tc.status >= 500 && strings.Contains(res.body, "nonsense") {
				t.Errorf("script output leaked into the error page: %q", res.body)
			}
			for _, hv := range tc.header {
				k, v, _ := strings.Cut(hv, ": ")
				if got := res.header.Values(k); !contains(got, v) {
					t.Errorf("header %s: got %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := res.header[k]; ok {
					t.Errorf("header %s: got %q, want none", k, v)
				}
			}
			if tc.log != "" && !strings.Contains(f.logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, f.logs)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// NPH scripts write their own status line; it is parsed and relayed.
func TestNPH(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "nph-hello")
	writeFile(t, root, "nph-bad.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nno status line'\n", 0o755)
	f := newFixture(t, testCfg(root), Options{})
	res := f.get(t, "/cgi-bin/nph-hello")
	if res.status != 201 || res.body != "nph body" || res.header.Get("X-Nph") != "yes" {
		t.Errorf("nph: got %d %q %v", res.status, res.body, res.header)
	}
	if res := f.get(t, "/cgi-bin/nph-bad.sh"); res.status != 502 {
		t.Errorf("nph without status line: got %d, want 502", res.status)
	}
}

// A local redirect (Location: /path, no Status) is a new GET through the
// site's routing, with the same client and no body.
func TestLocalRedirect(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "go.sh", "#!/bin/sh\nprintf 'Location: /admin/x?y=1\\n\\nignored body'\n", 0o755)
	writeFile(t, root, "self.sh", "#!/bin/sh\nprintf 'Location: /cgi-bin/self.sh\\n\\n'\n", 0o755)
	var mu sync.Mutex
	var got *http.Request
	var gotBody []byte
	var h *Handler
	redispatch := func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/cgi-bin/") {
			h.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, gotBody = r, b
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "routed "+r.URL.Path)
	}
	f := newFixture(t, testCfg(root), Options{Redispatch: redispatch})
	h = f.h
	res := f.do(t, "POST", "/cgi-bin/go.sh", strings.NewReader("payload"), "Host", "site.example", "Content-Type", "text/plain")
	if res.status != 200 || res.body != "routed /admin/x" {
		t.Fatalf("got %d %q", res.status, res.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Method != "GET" || got.URL.RawQuery != "y=1" || got.Host != "site.example" || len(gotBody) != 0 ||
		got.ContentLength != 0 || got.Header.Get("Content-Type") != "" || !strings.HasPrefix(got.RemoteAddr, "127.0.0.1:") || got.RequestURI != "/admin/x?y=1" {
		t.Errorf("redispatched request: %s %s host %q body %q cl %d ct %q remote %q",
			got.Method, got.URL, got.Host, gotBody, got.ContentLength, got.Header.Get("Content-Type"), got.RemoteAddr)
	}
	if _, ok := got.Context().Value(http.LocalAddrContextKey).(net.Addr); !ok {
		t.Errorf("redispatched request lost the connection's context")
	}
	// A loop ends.
	if res := f.get(t, "/cgi-bin/self.sh"); res.status != 500 {
		t.Errorf("redirect loop: got %d, want 500", res.status)
	}
	// Without Redispatch: 500, never a direct handler call.
	f2 := newFixture(t, testCfg(root), Options{})
	if res := f2.get(t, "/cgi-bin/go.sh"); res.status != 500 {
		t.Errorf("no redispatch: got %d, want 500", res.status)
	}
}

// Timeout: the whole group gets SIGTERM (traps run), then SIGKILL.
func TestTimeout(t *testing.T) {
	root := newRoot(t)
	marks := newRoot(t)
	os.Chmod(marks, 0o777)
	mark := filepath.Join(marks, "trapped")
	writeFile(t, root, "trap.sh", "#!/bin/sh\ntrap 'echo term > "+mark+"; exit 0' TERM\nsleep 1000 &\nwait\n", 0o755)
	linkHelper(t, root, "silent")
	linkHelper(t, root, "stubborn")
	cfg := testCfg(root)
	cfg.Timeout = config.Duration(500 * time.Millisecond)
	f := newFixture(t, cfg, Options{})

	start := time.Now()
	if res := f.get(t, "/cgi-bin/trap.sh"); res.status != 504 {
		t.Errorf("trap.sh: got %d, want 504", res.status)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v", d)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != "term\n" {
		t.Errorf("the TERM trap did not run (%v %q): SIGTERM must come before SIGKILL", err, b)
	}
	if res := f.get(t, "/cgi-bin/silent"); res.status != 504 {
		t.Errorf("silent: got %d, want 504", res.status)
	}

	// Ignoring SIGTERM does not help: SIGKILL after the grace period.
	start = time.Now()
	req, _ := http.NewRequest("GET", f.srv.URL+"/cgi-bin/stubborn", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr == nil {
		t.Errorf("a body cut by the timeout ended as if complete: %q", body)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(body)))
	if pid == 0 {
		t.Fatalf("no pid in %q", body)
	}
	proctest.WaitGone(t, pid, 3*time.Second)
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("stubborn script gone after %v: before timeout + grace", d)
	}
	if z := proctest.Zombies(); len(z) > 0 {
		t.Errorf("zombies: %v", z)
	}
}

// A client that goes away kills its script.
func TestClientDisconnect(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "sleepy")
	f := newFixture(t, testCfg(root), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	line, resp := f.readFirstLine(t, ctx, "/cgi-bin/sleepy")
	pid, _ := strconv.Atoi(line)
	if _, _, _, ok := proctest.Stat(pid); !ok {
		t.Fatalf("script %d not running", pid)
	}
	cancel()
	resp.Body.Close()
	proctest.WaitGone(t, pid, 3*time.Second)
}

// A script's background children die with it, and nothing is left to reap.
func TestGrandchildrenKilled(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "fork.sh", "#!/bin/sh\nsleep 1000 &\necho 'Content-Type: text/plain'\necho\necho $!\n", 0o755)
	writeFile(t, root, "fork-quiet.sh", "#!/bin/sh\nsleep 1000 </dev/null >/dev/null 2>&1 &\necho 'Content-Type: text/plain'\necho\necho $!\n", 0o755)
	f := newFixture(t, testCfg(root), Options{})
	for _, s := range []string{"fork.sh", "fork-quiet.sh"} {
		start := time.Now()
		res := f.get(t, "/cgi-bin/"+s)
		pid, err := strconv.Atoi(strings.TrimSpace(res.body))
		if err != nil {
			t.Fatalf("%s: %d %q", s, res.status, res.body)
		}
		proctest.WaitGone(t, pid, 3*time.Second)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v", s, d)
		}
	}
	if z := proctest.Zombies(); len(z) > 0 {
		t.Errorf("zombies: %v", z)
	}
}

// Close stops every running script, waits for them, and refuses new work.
func TestClose(t *testing.T) {
	root := newRoot(t)
	linkHelper(t, root, "sleepy")
	linkHelper(t, root, "stubborn")
	linkHelper(t, root, "env")
	f := newFixture(t, testCfg(root), Options{})
	var pids []int
	var resps []*http.Response
	for _, s := range []string{"sleepy", "sleepy", "stubborn"} {
		line, resp := f.readFirstLine(t, context.Background(), "/cgi-bin/"+s)
		pid, _ := strconv.Atoi(line)
		pids = append(pids, pid)
		resps = append(resps, resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := f.h.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close took %v", time.Since(start))
	for _, pid := range pids {
		if st, ppid, _, ok := proctest.Stat(pid); ok && !(st == 'Z' && ppid != os.Getpid()) {
			t.Errorf("script %d still there after Close (state %c)", pid, st)
		}
	}
	for _, r := range resps {
		r.Body.Close()
	}
	if res := f.get(t, "/cgi-bin/env"); res.status != 503 {
		t.Errorf("after Close: got %d, want 503", res.status)
	}
	// Close that runs out of time kills at once and says so.
	root2 := newRoot(t)
	linkHelper(t, root2, "stubborn")
	f2 := newFixture(t, testCfg(root2), Options{})
	f2.h.grace = 10 * time.Second
	line, resp := f2.readFirstLine(t, context.Background(), "/cgi-bin/stubborn")
	defer resp.Body.Close()
	pid, _ := strconv.Atoi(line)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := f2.h.Close(ctx2); err != context.DeadlineExceeded {
		t.Errorf("Close past its deadline: got %v, want DeadlineExceeded", err)
	}
	proctest.WaitGone(t, pid, 2*time.Second)
}

// HEAD runs the script with REQUEST_METHOD=HEAD; whatever body it writes is
// not sent.
func TestHead(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "m.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\nX-Method: %s\\n\\nbody' \"$REQUEST_METHOD\"\n", 0o755)
	f := newFixture(t, testCfg(root), Options{})
	res := f.do(t, "HEAD", "/cgi-bin/m.sh", nil)
	if res.status != 200 || res.header.Get("X-Method") != "HEAD" || res.body != "" {
		t.Errorf("HEAD: got %d %v %q", res.status, res.header, res.body)
	}
}

// Running as root, a cgi root the script user cannot reach is reported at
// New, and a script it cannot run is a 403 with a hint in the log.
func TestUnreachableRootWarns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir() // 0700: nobody cannot enter
	os.Chmod(filepath.Dir(dir), 0o700)
	writeFile(t, dir, "x.sh", "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho hi\n", 0o755)
	logs := &enginetest.SyncBuffer{}
	f := newFixture(t, testCfg(dir), Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if !strings.Contains(logs.String(), "cannot enter a folder") {
		t.Errorf("no warning at New: %s", logs)
	}
	if res := f.get(t, "/cgi-bin/x.sh"); res.status != 403 {
		t.Errorf("got %d, want 403", res.status)
	}
	if !strings.Contains(logs.String(), "unprivileged user") {
		t.Errorf("no hint in the log: %s", logs)
	}
}
