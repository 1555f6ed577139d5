package wsgi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/internal/config"
)

// python returns the interpreter for the tests, or skips: these tests run
// the real adapter under a real python3. /usr/bin/python3 is preferred over
// a PATH shim (pyenv's adds ~0.3s per start).
func python(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	return p
}

func testdata(t testing.TB, sub string) string {
	t.Helper()
	return testdataPath(t, filepath.Join("testdata", sub))
}

func testdataPath(t testing.TB, rel string) string {
	t.Helper()
	d, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog waits until the log contains all of subs.
func (l *logBuf) waitLog(t testing.TB, d time.Duration, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := l.String()
		ok := true
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q after %s:\n%s", subs, d, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testPool struct {
	*Pool
	srv  *httptest.Server
	logs *logBuf
}

// newTestPool starts the envapp test app with n workers behind an
// httptest server, route prefix "/app". The pool is closed at cleanup.
func newTestPool(t *testing.T, n int, timeout time.Duration) *testPool {
	t.Helper()
	return newPoolAt(t, config.WSGI{
		App:     "envapp:application",
		Dir:     testdata(t, "app"),
		Workers: n,
		Python:  python(t),
		Timeout: config.Duration(timeout),
	}, "/app")
}

func newPoolAt(t *testing.T, cfg config.WSGI, prefix string) *testPool {
	t.Helper()
	logs := &logBuf{}
	p, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Prefix: prefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tp := &testPool{Pool: p, logs: logs}
	tp.srv = httptest.NewServer(p)
	t.Cleanup(func() {
		tp.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tp
}

var testClient = &http.Client{Timeout: 20 * time.Second}

func (tp *testPool) get(t testing.TB, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", tp.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, b
}

// env fetches the app's environ (the JSON of its string/number values).
func (tp *testPool) env(t testing.TB, req *http.Request) map[string]any {
	t.Helper()
	resp, b := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d, body %q", req.URL, resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v in %q", req.URL, err, b)
	}
	return m
}

func (tp *testPool) pid(t testing.TB) int {
	t.Helper()
	resp, b := tp.get(t, "/app/pid")
	if resp.StatusCode != 200 {
		t.Fatalf("/app/pid: status %d, body %q", resp.StatusCode, b)
	}
	var m struct{ Pid int }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.Pid
}

// procStat reads state, ppid and pgid of pid from /proc; ok is false when
// there is no such process.
func procStat(pid int) (state byte, ppid, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgid, _ = strconv.Atoi(f[2])
	return f[0][0], ppid, pgid, true
}

// groupMembers lists the processes whose process group is pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, _, g, ok := procStat(pid); ok && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

func contains2(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newBenchServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
