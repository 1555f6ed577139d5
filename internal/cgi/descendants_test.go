package cgi

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/proctest"
)

// escapeScript starts a grandchild that leaves the script's session and
// process group (setsid) after a double fork (its parent exits at once),
// writes its pid to $PIDDIR/escapee and sleeps "forever"; then the script
// does what $1... the route's file name says: answers and exits ("exit"),
// or answers a first line and sleeps ("stream"), or sleeps silently.
const escapeScript = `#!/bin/sh
sh -c 'setsid sh -c "echo \$\$ > \"$PIDDIR/escapee.tmp\"; mv \"$PIDDIR/escapee.tmp\" \"$PIDDIR/escapee\"; exec sleep 1000" </dev/null >/dev/null 2>&1 &'
while [ ! -s "$PIDDIR/escapee" ]; do sleep 0.01; done
echo $$ > "$PIDDIR/script"
case "$QUERY_STRING" in
exit) printf 'Content-Type: text/plain\n\nbye\n' ;;
stream) printf 'Content-Type: text/plain\n\nfirst\n'; sleep 1000 ;;
*) sleep 1000 ;;
esac
`

// TestCGINoEscapedDescendants: a grandchild that calls setsid and whose
// parent exits (so it is neither in the script's process group nor below
// the script) is stopped with its script: at the timeout, when the client
// goes away, at Close, and when the script exits leaving it behind; it is
// reaped, and no zombie is left. Both ways of finding it are tested: the
// run's cgroup (where this host allows one) and, with cgroups off, the
// subreaper and the environment token.
func TestCGINoEscapedDescendants(t *testing.T) {
	for _, mode := range []string{"cgroup", "token"} {
		for _, tc := range []string{"timeout", "disconnect", "close", "exit"} {
			t.Run(mode+"/"+tc, func(t *testing.T) { escapeCase(t, mode, tc) })
		}
	}
}

// cgroupsOff makes h find a run's processes without cgroups.
func cgroupsOff(h *Handler) {
	h.cg = newCgroups(h.id)
	h.cg.once.Do(func() {})
}

func escapeCase(t *testing.T, mode, tc string) {
	{
		{
			root := newRoot(t)
			pidDir := filepath.Join(root, "pids")
			if err := os.Mkdir(pidDir, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(pidDir, 0o777) // the script may run as nobody
			writeFile(t, root, "escape.sh", escapeScript, 0o755)
			cfg := testCfg(root)
			cfg.Env["PIDDIR"] = pidDir
			cfg.Timeout = config.Duration(30 * time.Second)
			if tc == "timeout" {
				cfg.Timeout = config.Duration(time.Second)
			}
			f := newFixture(t, cfg, Options{})
			if mode == "token" {
				cgroupsOff(f.h)
			}
			var escapee int
			switch tc {
			case "timeout":
				res := f.get(t, "/cgi-bin/escape.sh")
				if res.status != 504 {
					t.Errorf("status %d, want 504", res.status)
				}
				escapee = proctest.ReadPidFile(t, filepath.Join(pidDir, "escapee"), 10*time.Second)
			case "disconnect":
				ctx, cancel := context.WithCancel(context.Background())
				line, resp := f.readFirstLine(t, ctx, "/cgi-bin/escape.sh?stream")
				if line != "first" {
					t.Fatalf("first line %q", line)
				}
				escapee = proctest.ReadPidFile(t, filepath.Join(pidDir, "escapee"), 10*time.Second)
				cancel()
				resp.Body.Close()
			case "close":
				done := make(chan struct{})
				go func() {
					defer close(done)
					req, _ := f.srv.Client().Get(f.srv.URL + "/cgi-bin/escape.sh")
					if req != nil {
						req.Body.Close()
					}
				}()
				escapee = proctest.ReadPidFile(t, filepath.Join(pidDir, "escapee"), 10*time.Second)
				proctest.ReadPidFile(t, filepath.Join(pidDir, "script"), 10*time.Second)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := f.h.Close(ctx); err != nil {
					t.Errorf("Close: %v", err)
				}
				<-done
			case "exit":
				if res := f.get(t, "/cgi-bin/escape.sh?exit"); res.status != 200 || res.body != "bye\n" {
					t.Errorf("status %d body %q", res.status, res.body)
				}
				escapee = proctest.ReadPidFile(t, filepath.Join(pidDir, "escapee"), 10*time.Second)
			}
			t.Cleanup(func() { _ = syscall.Kill(escapee, syscall.SIGKILL) }) // only if the test failed
			proctest.WaitReaped(t, escapee, 5*time.Second)
			if script := proctest.ReadPidFile(t, filepath.Join(pidDir, "script"), 10*time.Second); script > 0 {
				proctest.WaitReaped(t, script, 5*time.Second)
			}
			if z := proctest.Zombies(); len(z) > 0 {
				t.Errorf("zombies left: %v", z)
			}
		}
	}
}

// TestCGICgroupCatchesScrubbedEscapee: a grandchild that leaves the
// script's session after a double fork and drops its environment (so it
// carries no token) is still stopped and reaped when the script exits,
// where runs have their own cgroup. Without cgroups this is the documented
// gap (descendants.go): the test says so and ends the process itself.
func TestCGICgroupCatchesScrubbedEscapee(t *testing.T) {
	root := newRoot(t)
	pidDir := filepath.Join(root, "pids")
	if err := os.Mkdir(pidDir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pidDir, 0o777)
	writeFile(t, root, "scrub.sh", `#!/bin/sh
sh -c 'setsid env -i /bin/sh -c "echo \$\$ > \"$PIDDIR/escapee.tmp\"; mv \"$PIDDIR/escapee.tmp\" \"$PIDDIR/escapee\"; exec sleep 1000" </dev/null >/dev/null 2>&1 &'
while [ ! -s "$PIDDIR/escapee" ]; do sleep 0.01; done
printf 'Content-Type: text/plain\n\nbye\n'
`, 0o755)
	cfg := testCfg(root)
	cfg.Env["PIDDIR"] = pidDir
	f := newFixture(t, cfg, Options{})
	if res := f.get(t, "/cgi-bin/scrub.sh"); res.status != 200 {
		t.Fatalf("status %d\n%s", res.status, f.logs)
	}
	escapee := proctest.ReadPidFile(t, filepath.Join(pidDir, "escapee"), 10*time.Second)
	t.Cleanup(func() { _ = syscall.Kill(escapee, syscall.SIGKILL) })
	if !f.h.cg.on() {
		t.Logf("no writable cgroup v2 here: a scrubbed escapee is out of reach, as documented")
		return
	}
	proctest.WaitReaped(t, escapee, 5*time.Second)
	if z := proctest.Zombies(); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
}

// TestCGIRunHasItsOwnCgroup: where cgroups can be used, a script runs in
// portico-<handler id>/run-<n> under portico's own cgroup; the run cgroups
// are reused by later runs, and all are removed at Close.
func TestCGIRunHasItsOwnCgroup(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "cg.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nexec cat /proc/self/cgroup\n", 0o755)
	f := newFixture(t, testCfg(root), Options{})
	first := f.get(t, "/cgi-bin/cg.sh")
	if !f.h.cg.on() {
		t.Logf("no writable cgroup v2 here; runs share portico's cgroup:\n%s", first.body)
		return
	}
	want := "/portico-" + strconv.Itoa(os.Getpid()) + "-" + f.h.id + "/run-1\n"
	if !strings.Contains(first.body, want) {
		t.Fatalf("the script's cgroups:\n%s\nwant a v2 path ending in %q", first.body, want)
	}
	if again := f.get(t, "/cgi-bin/cg.sh"); !strings.Contains(again.body, want) {
		t.Errorf("a later run did not reuse the free cgroup:\n%s", again.body)
	}
	dir := f.h.cg.dir
	closeHandler(t, f.h)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the handler's cgroup %s is still there after Close (%v)", dir, err)
	}
}

// TestCGICgroupRemovedUnderPortico: when someone removes a run cgroup
// portico keeps for reuse, the next run still starts (without cgroups).
func TestCGICgroupRemovedUnderPortico(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "hi.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhi'\n", 0o755)
	f := newFixture(t, testCfg(root), Options{})
	if res := f.get(t, "/cgi-bin/hi.sh"); res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
	if !f.h.cg.on() {
		t.Logf("no writable cgroup v2 here; nothing to remove")
		return
	}
	if err := os.Remove(filepath.Join(f.h.cg.dir, "run-1")); err != nil {
		t.Fatal(err)
	}
	if res := f.get(t, "/cgi-bin/hi.sh"); res.status != 200 || res.body != "hi" {
		t.Errorf("after the cgroup went: status %d body %q\n%s", res.status, res.body, f.logs)
	}
	if f.h.cg.on() {
		t.Errorf("cgroups still on")
	}
}
