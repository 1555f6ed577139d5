package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wsgiDir copies examples/wsgi into a temp dir with a free port.
func wsgiDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../examples/wsgi/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v %s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "portico.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(cfg), `listen = ["127.0.0.1:8080"]`, `listen = ["127.0.0.1:0"]`, 1)
	s = strings.Replace(s, `access_log = "stdout"`, `access_log = "off"`, 1)
	if py, err := exec.LookPath("python3"); err == nil {
		// Name the interpreter directly (a pyenv shim is slow to start).
		if real, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output(); err == nil {
			s = strings.Replace(s, `workers = 3,`, `workers = 3, python = "`+strings.TrimSpace(string(real))+`",`, 1)
		}
	}
	writeFiles(t, dir, map[string]string{"portico.toml": s})
	return dir
}

func TestWSGIExampleThroughBinary(t *testing.T) {
	dir := wsgiDir(t)
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	resp, body := get(t, p.URL("/app/env?q=1"), "Proxy", "http://evil:1")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /app/env: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{"SCRIPT_NAME = '/app'", "PATH_INFO = '/env'", "QUERY_STRING = 'q=1'"} {
		if !strings.Contains(body, want) {
			t.Errorf("environ lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "HTTP_PROXY") {
		t.Errorf("httpoxy: HTTP_PROXY in the environ")
	}
	if _, body := get(t, p.URL("/app/hello?name=%3Cb%3E")); !strings.Contains(body, "Hello, &lt;b&gt;!") {
		t.Errorf("hello: %q", body)
	}
	// SIGTERM stops the workers too.
	pids := workerPIDs(t, dir)
	p.Signal(15)
	if code := p.Wait(15 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	for _, pid := range pids {
		if _, err := os.Stat("/proc/" + pid); err == nil {
			st, _ := os.ReadFile("/proc/" + pid + "/stat")
			if !strings.Contains(string(st), ") Z ") {
				t.Errorf("worker %s still running after shutdown", pid)
			}
		}
	}
}

// workerPIDs finds the python processes whose working directory is dir.
func workerPIDs(t *testing.T, dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || cwd != dir {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmd), "python") {
			pids = append(pids, e.Name())
		}
	}
	if len(pids) == 0 {
		t.Fatalf("no python workers found with cwd %s", dir)
	}
	return pids
}

func TestWSGIBrokenAppIsAClearErrorAtStart(t *testing.T) {
	dir := wsgiDir(t)
	writeFiles(t, dir, map[string]string{"myapp.py": "def application(environ, start_response)\n    pass\n"})
	start := time.Now()
	code, out, errOut := runPortico(t, dir, "check", "-c", "portico.toml")
	if code != 1 || !strings.Contains(errOut, "SyntaxError") || strings.Contains(errOut, "goroutine") {
		t.Errorf("check with a syntax error: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	code, _, errOut = runPortico(t, dir, "run", "-c", "portico.toml")
	if code != 1 || !strings.Contains(errOut, "SyntaxError") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 && !strings.Contains(errOut, "portico: ") {
		t.Errorf("run with a syntax error: exit %d, stderr %q", code, errOut)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v to report a broken app", d)
	}
}
