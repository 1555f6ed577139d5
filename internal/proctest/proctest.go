// Package proctest holds the test helpers of packages that start
// processes (CGI scripts, WSGI workers, the portico binary in e2e): reading
// a process's state from /proc, waiting for it to go, finding zombies and
// group members, pid files, and polling for a condition or a log line.
// It is to process tests what enginetest is to HTTP engine tests.
//
// It is imported by tests only. Every wait is bounded by the duration it
// is given.
package proctest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portico/internal/reaper"
)

// poll is the pace of every wait here.
const poll = 20 * time.Millisecond

// Stat returns the state letter of pid ('R', 'S', 'Z'...), its parent and
// its process group; ok is false when there is no such process.
func Stat(pid int) (state byte, ppid, pgid int, ok bool) {
	p, ok := reaper.Stat(pid)
	return p.State, p.PPID, p.PGID, ok
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	p, ok := reaper.Stat(pid)
	return ok && !p.Dead()
}

// WaitGone waits until pid no longer runs: gone, or a zombie that is not
// this process's to reap (an orphan of init's).
func WaitGone(t testing.TB, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, ppid, _, ok := Stat(pid)
		if !ok || (st == 'Z' && ppid != os.Getpid()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there after %s (state %c, parent %d)", pid, within, st, ppid)
		}
		time.Sleep(poll)
	}
}

// WaitReaped waits until pid does not exist at all: not running, and not
// a zombie either (someone reaped it).
func WaitReaped(t testing.TB, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, ppid, _, ok := Stat(pid)
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there after %s (state %c, parent %d; this process is %d)", pid, within, st, ppid, os.Getpid())
		}
		time.Sleep(poll)
	}
}

// Zombies lists the zombie children of this process.
func Zombies() []int {
	var z []int
	for _, pid := range reaper.Children() {
		if st, _, _, ok := Stat(pid); ok && st == 'Z' {
			z = append(z, pid)
		}
	}
	return z
}

// GroupMembers lists the processes (zombies included) of process group pgid.
func GroupMembers(pgid int) []int {
	var out []int
	for pid, p := range reaper.Snapshot() {
		if p.PGID == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// ReadPidFile waits up to within for file to hold a pid and returns it.
func ReadPidFile(t testing.TB, file string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(file)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s after %s", file, within)
		}
		time.Sleep(poll / 2)
	}
}

// WaitFor polls cond until it holds, or fails the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(poll)
	}
}

// WaitLog waits until log (an enginetest.SyncBuffer, or anything that
// prints what was written so far) contains all of subs.
func WaitLog(t testing.TB, log fmt.Stringer, d time.Duration, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := log.String()
		missing := ""
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				missing = sub
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q after %s:\n%s", missing, d, s)
		}
		time.Sleep(poll)
	}
}

// CopyFile copies src to dst with mode (a test binary into a folder that
// an unprivileged script user can reach, for self-exec helpers).
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// RemoveCgroupsOf removes the (empty) cgroups that the portico process pid
// made for CGI runs and could not remove because it was killed:
// "portico-PID-*" folders, with their run cgroups, under this process's
// cgroup v2 (where portico, its child, made them).
func RemoveCgroupsOf(pid int) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	rel := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel = p
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || rel == "" {
		return
	}
	for line := range strings.SplitSeq(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if !ok || !strings.HasPrefix(post, "cgroup2 ") || len(f) < 5 || f[3] != "/" {
			continue
		}
		dirs, _ := filepath.Glob(filepath.Join(f[4], rel, "portico-"+strconv.Itoa(pid)+"-*"))
		for _, d := range dirs {
			runs, _ := filepath.Glob(filepath.Join(d, "run-*"))
			for _, r := range runs {
				_ = os.Remove(r)
			}
			_ = os.Remove(d)
		}
	}
}
