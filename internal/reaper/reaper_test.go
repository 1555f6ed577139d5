package reaper

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if err := BecomeSubreaper(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// waitState polls until pid is in a state accepted by ok, or fails.
func waitState(t *testing.T, pid int, what string, ok func(Proc, bool) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, exists := Stat(pid)
		if ok(p, exists) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: never %s (now %+v, exists %v)", pid, what, p, exists)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// orphan starts a shell that starts a grandchild in a new session and
// exits: the grandchild is re-parented to this process (a subreaper).
// It returns the grandchild's pid.
func orphan(t *testing.T, grandchild string) int {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", "setsid /bin/sh -c '"+grandchild+"' </dev/null >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL); Reap(pid) })
	waitState(t, pid, "adopted", func(p Proc, ok bool) bool { return !ok || p.PPID == os.Getpid() })
	return pid
}

// TestReapOrphansLeavesOSExecChildren: a zombie that os/exec started
// keeps its exit status for cmd.Wait; an adopted orphan's zombie is
// reaped.
func TestReapOrphansLeavesOSExecChildren(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, cmd.Process.Pid, "a zombie", func(p Proc, ok bool) bool { return ok && p.State == 'Z' })
	orph := orphan(t, "exit 0")
	waitState(t, orph, "a zombie", func(p Proc, ok bool) bool { return !ok || p.State == 'Z' })

	n := ReapOrphans()
	if _, ok := Stat(orph); ok {
		t.Errorf("the orphan %d was not reaped (ReapOrphans: %d)", orph, n)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("cmd.Wait: %v, want exit status 7 (its status was stolen)", err)
	}
}

// TestReaperReapsAdoptedOrphans: with a Reaper running, an orphan that
// exits does not stay a zombie, while os/exec children started at the same
// time still get their own status.
func TestReaperReapsAdoptedOrphans(t *testing.T) {
	r, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var cmds []*exec.Cmd
	for i := 0; i < 20; i++ {
		c := exec.Command("/bin/sh", "-c", "sleep 0.3; exit 3")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	orph := orphan(t, "sleep 0.2")
	waitState(t, orph, "reaped", func(_ Proc, ok bool) bool { return !ok })
	for _, c := range cmds {
		var ee *exec.ExitError
		if err := c.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("cmd.Wait: %v, want exit status 3", err)
		}
	}
}

// TestDescendants walks a tree built from a fake snapshot.
func TestDescendants(t *testing.T) {
	snap := map[int]Proc{
		1: {PID: 1}, 10: {PID: 10, PPID: 1}, 11: {PID: 11, PPID: 10},
		12: {PID: 12, PPID: 11}, 20: {PID: 20, PPID: 1}, 13: {PID: 13, PPID: 10},
	}
	got := Descendants(snap, 10)
	want := map[int]bool{11: true, 12: true, 13: true}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, pid := range got {
		if !want[pid] {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}

// TestParseStat reads a stat line whose command holds ") (".
func TestParseStat(t *testing.T) {
	p, ok := parseStat(42, []byte("42 (a) (b c) S 7 42 40 0 -1"))
	if !ok || p.State != 'S' || p.PPID != 7 || p.PGID != 42 || p.Session != 40 {
		t.Errorf("got %+v %v", p, ok)
	}
}

// TestAdoptedListsOrphans: an orphan re-parented to this process is in
// Adopted (the main thread's children), whichever thread forked its
// ancestors.
func TestAdoptedListsOrphans(t *testing.T) {
	pid := orphan(t, "sleep 5")
	found := false
	for _, c := range Adopted() {
		found = found || c == pid
	}
	if !found {
		t.Errorf("orphan %d not in Adopted() = %v (Children() = %v)", pid, Adopted(), Children())
	}
}
