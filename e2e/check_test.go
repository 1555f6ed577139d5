package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pythonProc is a python process found in /proc.
type pythonProc struct {
	pid   int
	check bool // started by `portico check` (the adapter's --check mode)
}

// pythonsIn lists the live python processes whose working directory is
// dir (WSGI workers and import checks chdir to the app's folder).
// Zombies are dead: they are left out.
func pythonsIn(dir string) []pythonProc {
	entries, _ := os.ReadDir("/proc")
	var out []pythonProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || cwd != dir {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if !strings.Contains(string(cmd), "python") {
			continue
		}
		if procState(pid) == 'Z' {
			continue
		}
		out = append(out, pythonProc{pid: pid, check: strings.Contains(string(cmd), "\x00--check\x00")})
	}
	return out
}

// procState is the state letter of /proc/PID/stat (0: no such process).
func procState(pid int) byte {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(st), ')')
	if i < 0 || i+2 >= len(st) {
		return 0
	}
	return st[i+2]
}

// killLeftovers SIGKILLs python processes in dir when the test ends, so a
// failing test leaves nothing behind.
func killLeftovers(t *testing.T, dir string) {
	t.Cleanup(func() {
		for _, p := range pythonsIn(dir) {
			syscall.Kill(p.pid, syscall.SIGCONT)
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
}

// waitNoPythons waits up to d until no python process lives in dir and
// returns those still alive then.
func waitNoPythons(dir string, d time.Duration) []pythonProc {
	deadline := time.Now().Add(d)
	for {
		left := pythonsIn(dir)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setWorkers rewrites the example's worker count.
func setWorkers(t *testing.T, dir string, n int) {
	t.Helper()
	path := filepath.Join(dir, "portico.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "workers = 3,", "workers = "+strconv.Itoa(n)+",", 1)
	if s == string(b) {
		t.Fatal("example config has no `workers = 3,` to rewrite")
	}
	writeFiles(t, dir, map[string]string{"portico.toml": s})
}

// `workers = 100000` once made `portico check` fork Python for ten
// minutes; it is now a config error with its file and line, at once.
func TestCheckRefusesHugeWorkerCount(t *testing.T) {
	dir := wsgiDir(t)
	killLeftovers(t, dir)
	setWorkers(t, dir, 100000)
	start := time.Now()
	code, out, errOut := runPortico(t, dir, "check", "-c", "portico.toml")
	took := time.Since(start)
	want := filepath.Join(dir, "portico.toml") + ":18: workers 100000 is more than 1024"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("check: exit %d\nstdout %q\nstderr %q\nwant exit 1 and %q", code, out, errOut, want)
	}
	if took > 5*time.Second {
		t.Errorf("check took %v", took)
	}
	if left := pythonsIn(dir); len(left) > 0 {
		t.Errorf("python processes after check: %v", left)
	}
	code, _, errOut = runPortico(t, dir, "run", "-c", "portico.toml")
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("run: exit %d, stderr %q", code, errOut)
	}
}

// check on a valid WSGI config imports the app in one short-lived child
// (the adapter's --check mode), never starts the pool, and leaves no
// python process behind. /proc is sampled for the whole run.
func TestCheckStartsNoWorker(t *testing.T) {
	dir := wsgiDir(t)
	killLeftovers(t, dir)
	setWorkers(t, dir, 8)
	if left := pythonsIn(dir); len(left) > 0 {
		t.Fatalf("python processes before check: %v", left)
	}
	cmd := exec.Command(binary, "check", "-c", "portico.toml")
	cmd.Dir = dir
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	most, seenCheck, seenWorker := 0, false, false
	deadline := time.After(30 * time.Second)
sample:
	for samples := 0; samples < 100000; samples++ {
		ps := pythonsIn(dir)
		most = max(most, len(ps))
		for _, p := range ps {
			if p.check {
				seenCheck = true
			} else {
				seenWorker = true
			}
		}
		select {
		case <-done:
			break sample
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Fatalf("check did not finish in 30s")
		default:
			time.Sleep(2 * time.Millisecond)
		}
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 || strings.TrimSpace(stdout.String()) != "ok" {
		t.Fatalf("check: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	t.Logf("python processes seen at once during check: %d (import check seen: %v)", most, seenCheck)
	if seenWorker || most > 1 {
		t.Errorf("check started worker processes (at most %d at once; a non-check python seen: %v)", most, seenWorker)
	}
	if left := pythonsIn(dir); len(left) > 0 {
		t.Errorf("python processes left after check: %v", left)
	}
}

// A `portico check` killed while the app's import hangs leaves no child:
// the import check dies with it (parent-death signal), although the
// adapter never got to watching its parent.
func TestCheckKilledLeavesNoChild(t *testing.T) {
	dir := wsgiDir(t)
	killLeftovers(t, dir)
	writeFiles(t, dir, map[string]string{"myapp.py": "import time\ntime.sleep(120)\n"})
	cmd := exec.Command(binary, "check", "-c", "portico.toml")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for len(pythonsIn(dir)) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatal("check started no import process in 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-done
	if left := waitNoPythons(dir, 5*time.Second); len(left) > 0 {
		t.Errorf("5s after SIGKILL of portico check, its import process lives: %v", left)
	}
}

// SIGKILL of a running portico leaves no WSGI worker alive, even a frozen
// one (SIGSTOP: it cannot notice anything itself). The parent-death
// signal kills them all.
func TestSIGKILLLeavesNoWSGIWorker(t *testing.T) {
	dir := wsgiDir(t)
	killLeftovers(t, dir)
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	if resp, body := get(t, p.URL("/app/hello")); resp.StatusCode != 200 {
		t.Fatalf("GET /app/hello: %d %s", resp.StatusCode, body)
	}
	workers := pythonsIn(dir)
	if len(workers) != 3 {
		t.Fatalf("want 3 workers, found %v", workers)
	}
	for _, w := range workers {
		syscall.Kill(w.pid, syscall.SIGSTOP)
	}
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("portico did not die on SIGKILL")
	}
	start := time.Now()
	left := waitNoPythons(dir, 5*time.Second)
	t.Logf("%d workers (frozen) when portico was killed; %d alive after %v", len(workers), len(left), time.Since(start).Round(time.Millisecond))
	if len(left) > 0 {
		t.Errorf("workers alive 5s after SIGKILL of portico: %v", left)
	}
}
