package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"portico/internal/enginetest"
)

// TestProcessHelpers: a child is seen alive in its group, a zombie until
// waited for, then reaped; pid files and logs are waited for.
func TestProcessHelpers(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "read x")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) {
		t.Fatalf("child %d not alive", pid)
	}
	if _, ppid, pgid, ok := Stat(pid); !ok || ppid != os.Getpid() || pgid != pid {
		t.Errorf("Stat(%d): parent %d group %d ok %v", pid, ppid, pgid, ok)
	}
	if m := GroupMembers(pid); len(m) != 1 || m[0] != pid {
		t.Errorf("GroupMembers(%d) = %v", pid, m)
	}
	stdin.Close()
	WaitFor(t, 5*time.Second, "a zombie", func() bool { st, _, _, _ := Stat(pid); return st == 'Z' })
	if z := Zombies(); len(z) != 1 || z[0] != pid {
		t.Errorf("Zombies() = %v, want [%d]", z, pid)
	}
	_ = cmd.Wait()
	WaitReaped(t, pid, 5*time.Second)

	file := filepath.Join(t.TempDir(), "pid")
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(file, []byte(strconv.Itoa(pid)+"\n"), 0o644)
	}()
	if got := ReadPidFile(t, file, 5*time.Second); got != pid {
		t.Errorf("ReadPidFile = %d, want %d", got, pid)
	}
	log := &enginetest.SyncBuffer{}
	go func() {
		time.Sleep(50 * time.Millisecond)
		log.Write([]byte("one two\n"))
	}()
	WaitLog(t, log, 5*time.Second, "one", "two")
}
