package reaper

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Proc is one process as /proc/PID/stat shows it.
type Proc struct {
	PID, PPID, PGID, Session int
	// State is the state letter: 'R', 'S', 'D', 'T', 'Z' (zombie)...
	State byte
}

// Dead reports whether the process has exited and only waits to be
// reaped (a zombie), so signalling it is pointless.
func (p Proc) Dead() bool { return p.State == 'Z' || p.State == 'X' }

// Stat reads one process; ok is false when there is no such process.
func Stat(pid int) (Proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Proc{}, false
	}
	return parseStat(pid, b)
}

// parseStat parses "pid (comm) state ppid pgrp session ...". comm may
// hold spaces and parentheses: the last ')' ends it.
func parseStat(pid int, b []byte) (Proc, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Proc{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 || len(f[0]) == 0 {
		return Proc{}, false
	}
	p := Proc{PID: pid, State: f[0][0]}
	p.PPID, _ = strconv.Atoi(f[1])
	p.PGID, _ = strconv.Atoi(f[2])
	p.Session, _ = strconv.Atoi(f[3])
	return p, true
}

// Snapshot reads every process of the machine (of its pid namespace).
// Processes that exit while it reads are left out.
func Snapshot() map[int]Proc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	procs := make(map[int]Proc, len(names))
	for _, name := range names {
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, ok := Stat(pid); ok {
			procs[pid] = p
		}
	}
	return procs
}

// Descendants returns every process below the roots in snap (children,
// their children...), the roots themselves excluded.
func Descendants(snap map[int]Proc, roots ...int) []int {
	kids := make(map[int][]int, len(snap))
	for pid, p := range snap {
		kids[p.PPID] = append(kids[p.PPID], pid)
	}
	var out []int
	seen := make(map[int]bool, len(roots))
	queue := append([]int(nil), roots...)
	for _, r := range roots {
		seen[r] = true
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, k := range kids[pid] {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
				queue = append(queue, k)
			}
		}
	}
	return out
}

// Children lists the direct children of this process, from the kernel's
// per-thread lists (/proc/self/task/TID/children), which is cheap: no
// walk over every process of the machine. Where the kernel lacks those
// files (CONFIG_PROC_CHILDREN), it falls back to a Snapshot.
func Children() []int {
	self := os.Getpid()
	tasks, err := os.ReadDir("/proc/self/task")
	var out []int
	if err == nil {
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
			if err != nil {
				if os.IsNotExist(err) {
					goto fallback
				}
				continue // the thread exited
			}
			for f := range strings.FieldsSeq(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					out = append(out, pid)
				}
			}
		}
		return out
	}
fallback:
	out = out[:0]
	for pid, p := range Snapshot() {
		if p.PPID == self {
			out = append(out, pid)
		}
	}
	return out
}

// Adopted lists the children of this process's main thread: where the
// kernel puts the orphans a subreaper adopts (find_new_reaper picks the
// first live thread of the subreaper, the thread-group leader unless it is
// exiting, which a Go program's is not). It is the cheap way to look for
// adopted orphans: one small file. Children of other threads (what those
// threads forked) are not in it; Children has them all. Without the file
// (CONFIG_PROC_CHILDREN) it is Children.
func Adopted() []int {
	self := strconv.Itoa(os.Getpid())
	b, err := os.ReadFile("/proc/self/task/" + self + "/children")
	if err != nil {
		return Children()
	}
	var out []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// HasEnv reports whether the initial environment of pid (what it was
// exec'd with, /proc/PID/environ) holds the exact entry kv ("NAME=value").
// Reading another user's environment needs root (or CAP_SYS_PTRACE).
func HasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil || len(b) == 0 {
		return false
	}
	for entry := range bytes.SplitSeq(b, []byte{0}) {
		if string(entry) == kv {
			return true
		}
	}
	return false
}
