package cgi

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// limitModes are the two ways limits reach a script: the traced start
// (scripts running as portico's own user: as root, user = "root") and the
// exec shim (forced).
var limitModes = []struct {
	name string
	set  func(*config.CGI)
	shim bool
}{
	{"traced", func(c *config.CGI) { c.User = "root" }, false},
	{"shim", func(*config.CGI) {}, true},
}

// TestCGILimitsAreSet: every limit of the config is in force when the
// script runs (read back from /proc/self/limits by the script itself), by
// either way of setting them.
func TestCGILimitsAreSet(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "limits.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nexec cat /proc/self/limits\n", 0o755)
	for _, mode := range limitModes {
		t.Run(mode.name, func(t *testing.T) {
			cfg := testCfg(root)
			mode.set(&cfg)
			cfg.Limits = config.CGILimits{CPU: config.Duration(10 * time.Second), Memory: 256 << 20, Files: 64, Processes: 32}
			f := newFixture(t, cfg, Options{})
			if mode.shim {
				f.h.limiter.useShim.Store(true)
			}
			res := f.get(t, "/cgi-bin/limits.sh")
			if res.status != 200 {
				t.Fatalf("status %d: %s\n%s", res.status, res.body, f.logs)
			}
			if got := f.h.limiter.useShim.Load(); got != mode.shim {
				t.Errorf("went through the shim: %v, want %v\n%s", got, mode.shim, f.logs)
			}
			for _, want := range [][]string{
				{"Max cpu time", "10", "11"},
				{"Max address space", "268435456", "268435456"},
				{"Max open files", "64", "64"},
				{"Max processes", "32", "32"},
			} {
				line := ""
				for l := range strings.SplitSeq(res.body, "\n") {
					if strings.HasPrefix(l, want[0]) {
						line = l
					}
				}
				f := strings.Fields(strings.TrimPrefix(line, want[0]))
				if len(f) < 2 || f[0] != want[1] || f[1] != want[2] {
					t.Errorf("%s: got %q, want soft %s hard %s", want[0], line, want[1], want[2])
				}
			}
		})
	}
}

// TestCGIMemoryLimit: a script that allocates past its memory limit dies,
// the client gets 500, and the server keeps serving.
func TestCGIMemoryLimit(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "hog.py", "#!/usr/bin/python3\nx = bytearray(512 * 1024 * 1024)\nprint('Content-Type: text/plain\\n\\nallocated')\n", 0o755)
	writeFile(t, root, "ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nok'\n", 0o755)
	cfg := testCfg(root)
	cfg.Limits.Memory = 128 << 20
	f := newFixture(t, cfg, Options{})
	if res := f.get(t, "/cgi-bin/hog.py"); res.status != 500 || strings.Contains(res.body, "allocated") {
		t.Errorf("hog.py: status %d body %q, want 500\n%s", res.status, res.body, f.logs)
	}
	if !strings.Contains(f.logs.String(), "MemoryError") {
		t.Errorf("no MemoryError in the log:\n%s", f.logs)
	}
	if res := f.get(t, "/cgi-bin/ok.sh"); res.status != 200 || res.body != "ok" {
		t.Errorf("after the hog: status %d body %q", res.status, res.body)
	}
}

// TestCGICPULimit: a CPU-bound script is stopped by its cpu limit long
// before its wall-clock timeout.
func TestCGICPULimit(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "spin.sh", "#!/bin/sh\nwhile :; do :; done\n", 0o755)
	cfg := testCfg(root)
	cfg.Timeout = config.Duration(30 * time.Second)
	cfg.Limits.CPU = config.Duration(time.Second)
	f := newFixture(t, cfg, Options{})
	start := time.Now()
	res := f.get(t, "/cgi-bin/spin.sh")
	took := time.Since(start)
	if res.status != 500 {
		t.Errorf("status %d, want 500\n%s", res.status, f.logs)
	}
	// One second of CPU (two on a machine too busy to give it at once),
	// far from the 30 s timeout.
	if took > 10*time.Second {
		t.Errorf("stopped after %s", took)
	}
	if !strings.Contains(f.logs.String(), "CPU time limit exceeded") {
		t.Errorf("the log does not say why:\n%s", f.logs)
	}
}

// TestCGIProcessLimit: a fork loop is capped by the processes limit.
func TestCGIProcessLimit(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "forks.py", `#!/usr/bin/python3
import os, time
n = 0
for i in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    n += 1
print("Content-Type: text/plain\n\nforked=%d" % n, flush=True)
`, 0o755)
	cfg := testCfg(root)
	const limit = 16
	cfg.Limits.Processes = limit
	f := newFixture(t, cfg, Options{})
	res := f.get(t, "/cgi-bin/forks.py")
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(res.body, "forked=")))
	if res.status != 200 || err != nil {
		t.Fatalf("status %d body %q\n%s", res.status, res.body, f.logs)
	}
	if n >= limit {
		t.Errorf("the script forked %d processes, limit %d", n, limit)
	}
}

// TestCGIKillGrace: a script stopped at its timeout gets SIGTERM, and
// kill_grace to run its trap before SIGKILL; with a grace shorter than
// the trap's work, SIGKILL cuts it.
func TestCGIKillGrace(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "trap.sh", "#!/bin/bash\ntrap 'sleep 0.3; echo \"trap finished\" >&2; exit 0' TERM\nsleep 30 &\nwait\n", 0o755)
	for _, tc := range []struct {
		grace   time.Duration
		trapRan bool
	}{
		{3 * time.Second, true},
		{50 * time.Millisecond, false},
	} {
		t.Run(tc.grace.String(), func(t *testing.T) {
			cfg := testCfg(root)
			// The grace is capped at the timeout: 1 s here, the trap
			// needs 0.3 s.
			cfg.Timeout = config.Duration(time.Second)
			cfg.KillGrace = config.Duration(tc.grace)
			f := newFixture(t, cfg, Options{})
			start := time.Now()
			if res := f.get(t, "/cgi-bin/trap.sh"); res.status != 504 {
				t.Errorf("status %d, want 504", res.status)
			}
			took := time.Since(start)
			if got := strings.Contains(f.logs.String(), "trap finished"); got != tc.trapRan {
				t.Errorf("trap finished: %v, want %v (answer after %s)\n%s", got, tc.trapRan, took, f.logs)
			}
		})
	}
}
