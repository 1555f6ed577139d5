package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"portico/internal/proctest"
)

// escapeScript starts a grandchild that leaves the script's session and
// group (setsid) with its parent gone at once (a double fork), writes
// the pids to $PIDDIR and sleeps.
const escapeScript = `#!/bin/sh
sh -c 'setsid sh -c "echo \$\$ > \"$PIDDIR/escapee.tmp\"; mv \"$PIDDIR/escapee.tmp\" \"$PIDDIR/escapee\"; exec sleep 1000" </dev/null >/dev/null 2>&1 &'
while [ ! -s "$PIDDIR/escapee" ]; do sleep 0.01; done
echo $$ > "$PIDDIR/script"
sleep 1000
`

// TestCGIDescendantsDieWithPortico: a script whose grandchild escaped its
// session (setsid, double fork) is running when portico gets SIGTERM: after
// portico exits, neither the script nor the grandchild is left (not even
// as a zombie). On SIGKILL of portico, the script dies by its
// parent-death signal.
func TestCGIDescendantsDieWithPortico(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			os.Chmod(filepath.Dir(dir), 0o755)
			os.Chmod(dir, 0o755)
			pidDir := filepath.Join(dir, "pids")
			os.Mkdir(pidDir, 0o777)
			os.Chmod(pidDir, 0o777) // scripts run as nobody under root
			writeFiles(t, dir, map[string]string{"cgi-bin/escape.sh": escapeScript})
			os.Chmod(filepath.Join(dir, "cgi-bin/escape.sh"), 0o755)
			p := startConfig(t, dir, fmt.Sprintf(`
[server]
shutdown_timeout = "1s"

[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin", timeout = "60s", kill_grace = "500ms", env = { PIDDIR = %q } }
`, pidDir), 1)
			go func() {
				c := &http.Client{Timeout: 20 * time.Second}
				if resp, err := c.Get(p.URL("/cgi-bin/escape.sh")); err == nil {
					resp.Body.Close()
				}
			}()
			escapee := proctest.ReadPidFile(t, filepath.Join(pidDir, "escapee"), 10*time.Second)
			script := proctest.ReadPidFile(t, filepath.Join(pidDir, "script"), 10*time.Second)
			// After SIGKILL of portico only the script itself dies (its
			// parent-death signal): what it started is orphaned beyond
			// portico's reach, so the test ends it.
			t.Cleanup(func() {
				syscall.Kill(escapee, syscall.SIGKILL)
				syscall.Kill(-script, syscall.SIGKILL)
				time.Sleep(100 * time.Millisecond) // they leave their cgroup as they exit
				proctest.RemoveCgroupsOf(p.cmd.Process.Pid)
			})
			p.Signal(sig)
			code := p.Wait(15 * time.Second)
			t.Logf("portico exit %d after %s; script %d, escapee %d", code, sig, script, escapee)
			if sig == syscall.SIGTERM && code != 0 {
				t.Errorf("exit %d after SIGTERM, want 0\n%s", code, p.Stderr)
			}
			deadline := time.Now().Add(5 * time.Second)
			for proctest.Alive(script) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if proctest.Alive(script) {
				t.Errorf("the script %d outlived portico (%s)", script, sig)
			}
			if sig == syscall.SIGTERM {
				if _, err := os.Stat("/proc/" + strconv.Itoa(escapee)); err == nil {
					t.Errorf("the escaped grandchild %d is still there after portico's shutdown (alive: %v)", escapee, proctest.Alive(escapee))
				}
			}
		})
	}
}
