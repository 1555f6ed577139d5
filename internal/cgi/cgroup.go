package cgi

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"portico/internal/procattr"
)

// Per-run cgroups: the exact answer to "what did this script start".
//
// Where portico may create cgroups (cgroup v2, a writable tree: root on
// most hosts, or a delegated subtree), each run starts directly inside its
// own cgroup (clone3 CLONE_INTO_CGROUP, Linux 5.7+), and everything it
// forks stays there whatever it does with sessions, groups or its
// environment: leaving a cgroup takes write access to cgroup.procs files
// that scripts (running as cfg.User) do not have. A run's processes are
// then simply its cgroup.procs, on top of the subreaper and the token
// (descendants.go), which remain for hosts without cgroups.
//
// Layout: PORTICO-CGROUP/portico-<pid>-<handler id>/run-<n>, where PORTICO-CGROUP
// is portico's own cgroup; no controllers are enabled (limits are rlimits),
// so processes may live at every level. A run's cgroup is reused by a
// later run once it is empty (as many exist as runs at once); all are
// removed at Close. What a killed portico left is removed by the next
// one started in the same cgroup (removeStale). Whether it works is probed once, in
// New, by starting portico's exec shim (which exits at once) inside a
// cgroup: a failure there turns cgroups off for the handler, so a failure
// later is always the script's own.

// cgroups gives each run of one handler its own cgroup, when they can be
// used here. The handler's cgroup is made (and probed) at the first run,
// not in New: a handler built only to check a config, or never used,
// leaves nothing in the cgroup tree.
type cgroups struct {
	id   string
	once sync.Once
	dir  string      // the handler's cgroup folder, "" when cgroups are off
	gone atomic.Bool // someone removed our cgroups: off from then on

	// Run cgroups are reused: making and removing one costs more than
	// the rest of a short run's bookkeeping. A cgroup goes back to free
	// only when it is empty.
	mu     sync.Mutex
	free   []runCgroup
	made   int
	fds    []int // every descriptor of a run cgroup, closed by close
	closed bool
}

// runCgroup is the cgroup of one run while it runs.
type runCgroup struct {
	path string
	fd   int // open for CLONE_INTO_CGROUP
}

func newCgroups(id string) *cgroups { return &cgroups{id: id} }

// on reports whether runs get their own cgroups, setting them up the
// first time.
func (c *cgroups) on() bool {
	c.once.Do(c.setUp)
	return c.dir != "" && !c.gone.Load()
}

// vanished reports whether the cgroup of rc was removed by someone else
// (a start into it failed); cgroups are then off for good.
func (c *cgroups) vanished(rc runCgroup) bool {
	if _, err := os.Stat(rc.path); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	c.gone.Store(true)
	return true
}

// acquire returns an empty run cgroup: a free one, or a new one.
func (c *cgroups) acquire() (runCgroup, error) {
	c.mu.Lock()
	if n := len(c.free); n > 0 {
		rc := c.free[n-1]
		c.free = c.free[:n-1]
		c.mu.Unlock()
		return rc, nil
	}
	c.made++
	name := "run-" + strconv.Itoa(c.made)
	c.mu.Unlock()
	path, fd, err := c.create(name)
	if err != nil {
		return runCgroup{}, err
	}
	c.mu.Lock()
	c.fds = append(c.fds, fd)
	c.mu.Unlock()
	return runCgroup{path: path, fd: fd}, nil
}

// release takes a run cgroup back once its run is over. One that still
// holds processes (they survived SIGKILL) is not used again.
func (c *cgroups) release(rc runCgroup) {
	if len(cgroupProcs(rc.path)) > 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.free = append(c.free, rc)
	}
}

// setUp makes the handler's cgroup and probes it; dir stays "" when they
// cannot be used here.
func (c *cgroups) setUp() {
	base := ownCgroup2()
	if base == "" {
		return
	}
	removeStale(base)
	dir := filepath.Join(base, "portico-"+strconv.Itoa(os.Getpid())+"-"+c.id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return
	}
	c.dir = dir
	if !c.probe() {
		_ = os.Remove(dir)
		c.dir = ""
	}
}

// probe starts the exec shim (it exits at once: its argument is no limit
// spec) inside a fresh cgroup.
func (c *cgroups) probe() bool {
	path, fd, err := c.create("probe")
	if err != nil {
		return false
	}
	defer c.remove(path)
	defer syscall.Close(fd)
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{shimArg0, "-", "-"},
		Env:         []string{shimEnv + "=probe"},
		SysProcAttr: &syscall.SysProcAttr{},
	}
	if !procattr.IntoCgroup(cmd.SysProcAttr, fd) {
		return false
	}
	if err := cmd.Start(); err != nil {
		return false
	}
	_ = cmd.Wait()
	return true
}

// create makes the cgroup of one run and opens it for CLONE_INTO_CGROUP.
func (c *cgroups) create(name string) (string, int, error) {
	path := filepath.Join(c.dir, name)
	if err := os.Mkdir(path, 0o755); err != nil {
		return "", -1, err
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(path)
		return "", -1, err
	}
	return path, fd, nil
}

// procs lists the processes in the cgroup at path (exited ones leave it
// at once, zombies included).
func cgroupProcs(path string) []int {
	b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// remove deletes an empty run cgroup, waiting a little for processes
// that are still exiting; it reports whether it is gone.
func (c *cgroups) remove(path string) bool {
	for try := 0; try < 50; try++ {
		err := os.Remove(path)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// close removes the handler's cgroup and its run cgroups (those left
// non-empty by processes that outlived SIGKILL, if they are empty now).
func (c *cgroups) close() {
	c.once.Do(func() {}) // no set-up after Close
	c.mu.Lock()
	c.closed = true
	fds := c.fds
	c.fds, c.free = nil, nil
	c.mu.Unlock()
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
	if c.dir == "" {
		return
	}
	if ents, err := os.ReadDir(c.dir); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				c.remove(filepath.Join(c.dir, e.Name()))
			}
		}
	}
	c.remove(c.dir)
}

// removeStale removes the cgroups a portico that is gone (killed, so it
// could not clean up) left in base: "portico-PID-ID" folders whose PID
// no longer exists, with their run cgroups, if they are empty.
func removeStale(base string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "portico-")
		pidText, _, ok2 := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || !ok2 || err != nil || !e.IsDir() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue // that portico (or a process reusing its pid) lives
		}
		dir := filepath.Join(base, e.Name())
		if runs, err := os.ReadDir(dir); err == nil {
			for _, r := range runs {
				if r.IsDir() {
					_ = os.Remove(filepath.Join(dir, r.Name()))
				}
			}
		}
		_ = os.Remove(dir)
	}
}

// ownCgroup2 returns the folder of this process's cgroup in the cgroup v2
// hierarchy ("0::/path" in /proc/self/cgroup, under the cgroup2 mount),
// or "" when there is none.
func ownCgroup2() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	rel := ""
	found := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel, found = p, true
		}
	}
	if !found || !strings.HasPrefix(rel, "/") {
		return ""
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		fields := strings.Fields(pre)
		if len(fields) < 5 {
			continue
		}
		root, mnt := fields[3], fields[4]
		if root == "/" {
			return filepath.Join(mnt, rel)
		}
		if sub, ok := strings.CutPrefix(rel, root); ok && (sub == "" || sub[0] == '/') {
			return filepath.Join(mnt, sub)
		}
	}
	return ""
}
