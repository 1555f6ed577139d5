// Package e2e holds end-to-end tests: they build the real portico binary
// once, start it on free loopback ports and talk HTTP to it, as a user would.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"portico/internal/enginetest"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the portico binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portico-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "portico")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "portico/cmd/portico")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building portico:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is the shared goroutine-safe buffer.
type syncBuffer = enginetest.SyncBuffer

// Proc is a running portico.
type Proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	Stdout *syncBuffer
	Stderr *syncBuffer
	// URLs are the listener URLs from the "portico: serving URL" lines, in
	// the order printed (listeners are opened sorted by address).
	URLs   []string
	exited chan struct{}
	err    error
}

var servingLine = regexp.MustCompile(`portico: serving (\S+) \(site ([^)]*)\)`)

// startPortico runs the binary with args in dir (the test's temp dir when
// empty) and waits until it has printed wantListeners serving lines. The
// process is stopped (SIGTERM, then SIGKILL) when the test ends.
func startPortico(t *testing.T, dir string, wantListeners int, args ...string) *Proc {
	t.Helper()
	return startBinary(t, binary, dir, wantListeners, args...)
}

// startBinary is startPortico with another build of portico, bin.
func startBinary(t *testing.T, bin, dir string, wantListeners int, args ...string) *Proc {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := &Proc{t: t, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stderr = p.Stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			p.Stdout.Write([]byte(line + "\n"))
			select {
			case lines <- line:
			default:
			}
		}
		close(lines)
	}()
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop()
		// A failed test shows what portico said: the log line that
		// explains an error the client only saw as a dropped connection.
		if t.Failed() {
			t.Logf("portico stderr (last 4 KiB):\n%s", lastBytes(dropLines(p.Stderr.String(), "Unsolicited"), 4096))
		}
	})
	deadline := time.After(15 * time.Second)
	for len(p.URLs) < wantListeners {
		select {
		case line, ok := <-lines:
			if !ok {
				<-p.exited
				t.Fatalf("portico exited before serving: %v\nstdout:\n%s\nstderr:\n%s", p.err, p.Stdout, p.Stderr)
			}
			if m := servingLine.FindStringSubmatch(line); m != nil {
				p.URLs = append(p.URLs, m[1])
			}
		case <-deadline:
			t.Fatalf("portico did not start in 15s\nstdout:\n%s\nstderr:\n%s", p.Stdout, p.Stderr)
		}
	}
	// Keep draining stdout after start.
	go func() {
		for range lines {
		}
	}()
	return p
}

// URL is the first listener's URL joined with path.
func (p *Proc) URL(path string) string {
	return strings.TrimSuffix(p.URLs[0], "/") + path
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
}

// Wait waits up to d for the process to exit and returns its exit code
// (-1 if it did not exit).
func (p *Proc) Wait(d time.Duration) int {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// Stop ends the process: SIGTERM, and SIGKILL after 10s.
func (p *Proc) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("portico did not stop on SIGTERM within 10s")
	}
}

// runPortico runs the binary to completion (for check, version, errors)
// and returns its exit code, stdout and stderr.
func runPortico(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("portico %v did not finish in 20s", args)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// writeFiles creates files under dir: a map of relative path to content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startConfig writes config (TOML) to dir/portico.toml and runs
// `portico run -c portico.toml` there. Use listen = ["127.0.0.1:0"] to get
// free ports; the chosen URLs are in Proc.URLs.
func startConfig(t *testing.T, dir, config string, wantListeners int) *Proc {
	t.Helper()
	writeFiles(t, dir, map[string]string{"portico.toml": config})
	return startPortico(t, dir, wantListeners, "run", "-c", "portico.toml")
}

// client is an HTTP client that does not follow redirects.
var client = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(b)
}

// get is do with GET and no body.
func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodGet, url, nil, header...)
}

// rawRequest sends raw bytes on a new connection to the proc's first
// listener and returns everything read until the server closes or 3s pass.
func rawRequest(t *testing.T, p *Proc, raw string) string {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	return rawTo(t, addr, raw, 3*time.Second)
}

// lastBytes is the tail of s, at most n bytes.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// dropLines is s without the lines containing sub: the warnings a test
// provokes on purpose (an upstream's unsolicited bytes), which would
// otherwise fill the tail shown of a failed test's log.
func dropLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(l, sub) {
			b.WriteString(l)
		}
	}
	return b.String()
}
