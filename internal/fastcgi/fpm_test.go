package fastcgi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/fastcgi/fpmtest"
	"portico/internal/static"
)

// Tests against Debian's php8.2-fpm (installed by .ci/run), started by
// each test with its own config in a temp dir and stopped at its end.

// phpApp is a site for the tests: a front controller, forms, an upload,
// a streaming script, and traps outside the root.
var phpApp = map[string]string{
	"public/index.php": `<?php
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: text/plain');
if (preg_match('#^/php/posts/(\d+)$#', $path, $m)) { echo "post ", $m[1], " q=", $_GET['q'] ?? ''; exit; }
if ($path === '/php/' || $path === '/php/index.php') { echo "home"; exit; }
http_response_code(404); echo "no route for $path";
`,
	"public/form.php": `<?php
header('Content-Type: text/plain');
echo $_SERVER['REQUEST_METHOD'], " name=", $_POST['name'] ?? '', " tags=", implode(',', $_POST['tags'] ?? []);
`,
	"public/upload.php": `<?php
header('Content-Type: text/plain');
$f = $_FILES['file'];
echo $_POST['title'], " ", $f['name'], " ", $f['size'], " ", md5_file($f['tmp_name']), " err=", $f['error'];
`,
	"public/stream.php": `<?php
header('Content-Type: text/plain');
for ($i = 0; $i < 3; $i++) {
    echo "chunk$i\n";
    flush();
    // Go on only once the test has seen the chunk (bounded: 10s).
    for ($w = 0; $w < 1000 && !file_exists(__DIR__ . "/../go$i"); $w++) { usleep(10000); clearstatcache(); }
}
echo "end\n";
`,
	"public/env.php/.keep": "", // a folder named like a script
	"public/info.php": `<?php
header('Content-Type: text/plain');
foreach (['SCRIPT_NAME', 'PATH_INFO', 'SCRIPT_FILENAME', 'HTTP_PROXY', 'HTTP_X_USER', 'REQUEST_URI', 'APP_ENV'] as $k) {
    echo $k, "=", $_SERVER[$k] ?? '<unset>', "\n";
}
echo "getenv(HTTP_PROXY)=", var_export(getenv('HTTP_PROXY'), true), "\n";
`,
	"public/warn.php": `<?php
trigger_error("something odd", E_USER_WARNING);
echo "warned";
`,
	"public/pid.php":         `<?php echo getmypid();`,
	"public/style.css":       "body { color: red }",
	"public/upload/evil.jpg": `<?php touch(__DIR__ . "/../../RAN-evil"); echo "EVIL";`,
	"secret/outside.php":     `<?php touch(__DIR__ . "/../RAN-outside"); echo "OUTSIDE";`,
	"outside.php":            `<?php touch(__DIR__ . "/RAN-outside2"); echo "OUTSIDE2";`,
}

type phpSite struct {
	dir  string
	h    *Handler
	srv  *httptest.Server
	logs *enginetest.SyncBuffer
	stop func()
}

// newPHPSite starts php-fpm with children workers and a portico fastcgi
// route "/php/" over dir/public, with the static fallback of server.Build.
func newPHPSite(t *testing.T, children int, extra string, edit func(*config.FastCGI)) *phpSite {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, phpApp)
	if err := os.Symlink(filepath.Join(dir, "secret", "outside.php"), filepath.Join(dir, "public", "link.php")); err != nil {
		t.Fatal(err)
	}
	sock, stop := fpmtest.Start(t, dir, children, extra)
	cfg := config.FastCGI{Upstream: "unix:" + sock, Root: filepath.Join(dir, "public"), MaxConns: children,
		Env: map[string]string{"APP_ENV": "test"}}
	cfg.SetDefaults()
	cfg.ReadTimeout = config.Duration(15 * time.Second)
	if edit != nil {
		edit(&cfg)
	}
	logs := &enginetest.SyncBuffer{}
	lg := slog.New(slog.NewTextHandler(logs, nil))
	st := config.Static{Root: cfg.Root}
	st.SetDefaults()
	files, err := static.New(st, static.Options{Logger: lg, Prefix: "/php"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg, Options{Logger: lg, Prefix: "/php", Files: files})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close(context.Background())
		_ = files.Close(context.Background())
	})
	return &phpSite{dir: dir, h: h, srv: srv, logs: logs, stop: stop}
}

func (s *phpSite) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func (s *phpSite) get(t *testing.T, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return s.do(t, req)
}

func TestPHPFrontController(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/php/posts/42?q=hi", 200, "post 42 q=hi"},
		{"/php/", 200, "home"},
		{"/php/index.php", 200, "home"},
		{"/php/nowhere", 404, "no route for /php/nowhere"},
		{"/php/style.css", 200, "body { color: red }"}, // the static fallback
		{"/php/info.php/extra/path", 200, "SCRIPT_NAME=/php/info.php\nPATH_INFO=/extra/path\n"},
		{"/php/missing.php", 404, ""},
	}
	for _, tc := range tests {
		resp, body := s.get(t, tc.path)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
	if resp, _ := s.get(t, "/php/style.css"); resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("static file Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

func TestPHPForm(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	form := url.Values{"name": {"Ada Lovelace"}, "tags[]": {"a", "b"}}
	req, _ := http.NewRequest("POST", s.srv.URL+"/php/form.php", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, body := s.do(t, req); body != "POST name=Ada Lovelace tags=a,b" {
		t.Errorf("form POST: %q", body)
	}
	// A chunked form body (no Content-Length): spooled, then the same.
	req, _ = http.NewRequest("POST", s.srv.URL+"/php/form.php", io.MultiReader(strings.NewReader(form.Encode())))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, body := s.do(t, req); body != "POST name=Ada Lovelace tags=a,b" {
		t.Errorf("chunked form POST: %q", body)
	}
}

func TestPHPUpload(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	data := bytes.Repeat([]byte("portico upload \x00\xff\n"), 40000) // 720 kB: many records
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("title", "report")
	fw, _ := mw.CreateFormFile("file", "data.bin")
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", s.srv.URL+"/php/upload.php", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	want := fmt.Sprintf("report data.bin %d %x err=0", len(data), md5.Sum(data))
	if _, body := s.do(t, req); body != want {
		t.Errorf("upload: %q, want %q", body, want)
	}
}

// TestPHPStreamed: each flush()ed chunk reaches the client while the
// script still runs (it waits for the test to see the chunk).
func TestPHPStreamed(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	resp, err := http.Get(s.srv.URL + "/php/stream.php")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("chunk%d\n", i) {
			t.Fatalf("chunk %d: %q %v", i, line, err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("go%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if rest, _ := io.ReadAll(br); string(rest) != "end\n" {
		t.Errorf("rest %q", rest)
	}
}

// TestPHPNeverOutsideRoot: no path runs a .php file outside the root,
// nor a non-.php file as PHP (the cgi.fix_pathinfo hole).
func TestPHPNeverOutsideRoot(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	for _, p := range []string{
		"/php/../outside.php", "/php/%2e%2e/outside.php", "/php/..%2foutside.php", "/php/%2e%2e%2fsecret%2foutside.php",
		"/php/link.php", "/php/upload/evil.jpg/x.php", "/php/upload/evil.jpg/x.php/y", "/php/upload/evil.jpg%00.php",
		"/php/upload/evil.jpg/.php", "/php/..\\outside.php",
	} {
		resp, body := s.get(t, p)
		if strings.Contains(body, "OUTSIDE") || strings.Contains(body, "EVIL") || resp.StatusCode == 200 && !strings.HasPrefix(body, "no route") {
			t.Errorf("GET %s = %d %q", p, resp.StatusCode, body)
		}
	}
	for _, m := range []string{"RAN-evil", "RAN-outside", "RAN-outside2"} {
		if _, err := os.Stat(filepath.Join(s.dir, m)); err == nil {
			t.Errorf("%s: a script outside the root ran", m)
		}
	}
}

func TestPHPHttpoxyAndEnv(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	_, body := s.get(t, "/php/info.php", "Proxy", "http://evil.test:1", "X_User", "spoofed")
	for _, want := range []string{"HTTP_PROXY=<unset>\n", "getenv(HTTP_PROXY)=false\n", "HTTP_X_USER=<unset>\n", "APP_ENV=test\n",
		"SCRIPT_FILENAME=" + filepath.Join(s.dir, "public", "info.php") + "\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("info.php lacks %q:\n%s", want, body)
		}
	}
}

func TestPHPStderrLogged(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	if _, body := s.get(t, "/php/warn.php"); body != "warned" {
		t.Errorf("warn.php: %q", body)
	}
	if log := s.logs.String(); !strings.Contains(log, "script=/php/warn.php") || !strings.Contains(log, "something odd") {
		t.Errorf("the warning is not in the error log, tagged with the script:\n%s", log)
	}
}

// TestPHPConnectionReuse: many requests over few connections; children
// recycled by php-fpm (pm.max_requests) cost no failed request.
func TestPHPConnectionReuse(t *testing.T) {
	s := newPHPSite(t, 3, "pm.max_requests = 7", nil)
	var wg sync.WaitGroup
	pids := sync.Map{}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				req, _ := http.NewRequest("GET", s.srv.URL+"/php/pid.php", nil)
				resp, err := s.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("request %d: %d %q", i, resp.StatusCode, b)
					return
				}
				pids.Store(string(b), true)
			}
		}()
	}
	wg.Wait()
	n := 0
	pids.Range(func(any, any) bool { n++; return true })
	dials := s.h.pool.dials.Load()
	t.Logf("200 requests, %d php-fpm children seen, %d connections", n, dials)
	if n < 4 {
		t.Errorf("only %d children answered: pm.max_requests did not recycle them", n)
	}
	// Each child serves 7 requests on its kept connection: about 200/7
	// connections, far fewer than 200.
	if dials > 60 {
		t.Errorf("%d connections for 200 requests: kept-alive connections are not reused", dials)
	}
	if strings.Contains(s.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", s.logs.String())
	}
}

func TestPHPFPMDown(t *testing.T) {
	s := newPHPSite(t, 2, "", nil)
	if resp, body := s.get(t, "/php/"); body != "home" {
		t.Fatalf("before: %d %q", resp.StatusCode, body)
	}
	s.stop()
	if resp, _ := s.get(t, "/php/"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("php-fpm down: %d, want 502", resp.StatusCode)
	}
	if log := s.logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "cannot reach the responder") {
		t.Errorf("no error log line for php-fpm down:\n%s", log)
	}
}
