package cgi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/proctest"
)

// The test binary doubles as the CGI scripts of most tests: hard links to
// it named "env", "count", "sleepy"... run helperMain, which picks its
// behaviour from its own base name (up to the first ".").
const helperEnv = "PORTICO_CGI_HELPER"

var (
	sharedDir string // 0755, so scripts run as nobody can reach it
	helperBin string // a copy of the test binary inside sharedDir
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helperMain()
		os.Exit(0)
	}
	code := func() int {
		var err error
		sharedDir, err = os.MkdirTemp("", "portico-cgi-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(sharedDir)
		if err := os.Chmod(sharedDir, 0o755); err != nil {
			panic(err)
		}
		self, err := os.Executable()
		if err != nil {
			panic(err)
		}
		helperBin = filepath.Join(sharedDir, "helper.bin")
		if err := proctest.CopyFile(self, helperBin, 0o755); err != nil {
			panic(err)
		}
		return m.Run()
	}()
	os.Exit(code)
}

// helperReport is what the "env" helper prints as its body.
type helperReport struct {
	Env  map[string]string
	Args []string
	Cwd  string
	UID  int
	GID  int
}

func helperMain() {
	name := filepath.Base(os.Args[0])
	if i := strings.IndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	out := os.Stdout
	switch name {
	case "env", "interp", "link-in":
		rep := helperReport{Env: map[string]string{}, Args: os.Args, UID: os.Getuid(), GID: os.Getgid()}
		rep.Cwd, _ = os.Getwd()
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			rep.Env[k] = v
		}
		b, _ := json.Marshal(rep)
		fmt.Fprintf(out, "Content-Type: application/json\r\n\r\n%s", b)
	case "count":
		// Reads stdin in small pieces and reports how much came.
		n, _ := io.CopyBuffer(io.Discard, os.Stdin, make([]byte, 8192))
		fmt.Fprintf(out, "Content-Type: text/plain\n\nn=%d", n)
	case "stream":
		fmt.Fprint(out, "Content-Type: text/plain\n\nfirst\n")
		time.Sleep(3 * time.Second)
		fmt.Fprint(out, "second\n")
	case "sleepy":
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%d\n", os.Getpid())
		time.Sleep(time.Hour)
	case "silent":
		fmt.Fprintf(os.Stderr, "silent pid %d\n", os.Getpid())
		time.Sleep(time.Hour)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%d\n", os.Getpid())
		time.Sleep(time.Hour)
	case "nph-hello":
		fmt.Fprint(out, "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Nph: yes\r\nConnection: close\r\n\r\nnph body")
	case "stderr":
		fmt.Fprint(os.Stderr, "first line\nsecond line\r\n")
		fmt.Fprint(os.Stderr, strings.Repeat("x", 10000)+"\n")
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(os.Stderr, "flood %d\n", i)
		}
		fmt.Fprint(out, "Content-Type: text/plain\n\nok")
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", name)
		os.Exit(2)
	}
}

// newRoot makes a script folder that the unprivileged script user can read.
func newRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(sharedDir, "root-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// linkHelper puts the helper binary into root under name.
func linkHelper(t *testing.T, root, name string) string {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(helperBin, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFile writes a script or data file (mode 0755 for scripts).
func writeFile(t *testing.T, root, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// testCfg is a config for root with the helper switch in the env.
func testCfg(root string) config.CGI {
	return config.CGI{
		Root:    root,
		Timeout: config.Duration(10 * time.Second),
		Env:     map[string]string{helperEnv: "1"},
	}
}

type fixture struct {
	h    *Handler
	srv  *httptest.Server
	logs *enginetest.SyncBuffer
}

// newFixture builds a handler on prefix /cgi-bin and serves it over HTTP/1.1.
func newFixture(t *testing.T, cfg config.CGI, opts Options) *fixture {
	t.Helper()
	logs := &enginetest.SyncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	if opts.Prefix == "" {
		opts.Prefix = "/cgi-bin"
	}
	h, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KillGrace == 0 {
		h.grace = 300 * time.Millisecond
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &fixture{h: h, srv: srv, logs: logs}
}

var client = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type result struct {
	status int
	header http.Header
	body   string
}

// do sends a request whose target is sent exactly as given.
func (f *fixture) do(t *testing.T, method, target string, body io.Reader, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func (f *fixture) get(t *testing.T, target string, hdr ...string) result {
	t.Helper()
	return f.do(t, "GET", target, nil, hdr...)
}

// report runs the env helper and decodes its report.
func (f *fixture) report(t *testing.T, method, target string, body io.Reader, hdr ...string) helperReport {
	t.Helper()
	res := f.do(t, method, target, body, hdr...)
	if res.status != 200 {
		t.Fatalf("%s %s: status %d, body %q\nlogs:\n%s", method, target, res.status, res.body, f.logs)
	}
	var rep helperReport
	if err := json.Unmarshal([]byte(res.body), &rep); err != nil {
		t.Fatalf("decoding report %q: %v", res.body, err)
	}
	return rep
}

// readFirstLine opens a streaming request and returns the first body line
// and a function that abandons the request.
func (f *fixture) readFirstLine(t *testing.T, ctx context.Context, target string) (string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+target, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatalf("reading first line: %v", err)
	}
	return strings.TrimSpace(line), resp
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
