// Package reaper keeps every process portico starts inside portico's own
// process tree, and reaps the orphans that this brings to it.
//
// The threat: a CGI script (or something a WSGI app starts) that leaves
// its process group and session (setsid) and double-forks: its parent
// exits, it is re-parented, and nothing that looks at portico's children
// or at the script's process group sees it again. Under Apache, and under
// portico before this package, such a process outlives its script's
// timeout and keeps running with the script's rights.
//
// The answer here is Linux's child subreaper (prctl
// PR_SET_CHILD_SUBREAPER, since 3.4, no privilege needed): an orphan is
// re-parented to its nearest living ancestor that is a subreaper, so with
// portico marked as one, every descendant of every script stays a
// descendant of portico for as long as it lives, whatever it does with
// sessions and groups. Who owns an escaped descendant is then the
// handler's business (package cgi marks its scripts with an environment
// token); this package gives the process tree (Snapshot, Descendants,
// Children, HasEnv) and reaps.
//
// Cgroups (v2, one per script) attribute processes exactly, and package
// cgi uses them where it may create them; but that takes a writable,
// delegated cgroup tree, which portico cannot count on (containers,
// unprivileged users, systemd without Delegate=); the subreaper works
// everywhere, and keeps orphans reapable by portico in every case.
//
// Reaping: adopted orphans that exit become zombies of portico, and must
// be waited for by portico. A blanket wait4(-1) would steal the exit
// status of the children that os/exec started and waits for (CGI scripts,
// WSGI workers): their cmd.Wait would fail with ECHILD. The Reaper waits
// only for zombies that no os.Process waits for: on Linux 5.4+ Go holds a
// pidfd for every child it started until its Wait returns, so a zombie
// child for which portico holds no pidfd (read from /proc/self/fdinfo) is
// an adopted orphan. Without pidfds (older kernels) a zombie is reaped
// once it has stayed one for orphanAge, far longer than any Wait takes.
package reaper

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Timing of the Reaper.
const (
	// scanGap bounds how often SIGCHLDs cause a scan (many scripts exit
	// per second under load; one scan serves them all).
	scanGap = 250 * time.Millisecond
	// scanEvery is the scan without a SIGCHLD (a signal can be merged).
	scanEvery = 5 * time.Second
	// orphanAge: without pidfds, a zombie seen this long is an orphan.
	orphanAge = 2 * time.Second
)

// Reaper reaps the zombies of adopted orphans until Close.
type Reaper struct {
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	// seen holds the zombies of the previous scan, with when first seen.
	seen map[int]time.Time
}

// Start makes this process a subreaper and starts reaping.
func Start(log *slog.Logger) (*Reaper, error) {
	if err := BecomeSubreaper(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reaper{log: log, cancel: cancel, done: make(chan struct{}), seen: map[int]time.Time{}}
	go r.loop(ctx)
	return r, nil
}

// Close stops the Reaper after a last scan.
func (r *Reaper) Close() {
	r.cancel()
	<-r.done
}

func (r *Reaper) loop(ctx context.Context) {
	defer close(r.done)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(scanEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.scan()
			return
		case <-sigs:
		case <-tick.C:
		}
		r.scan()
		select { // let SIGCHLDs gather
		case <-ctx.Done():
			r.scan()
			return
		case <-time.After(scanGap):
		}
	}
}

// scan reaps the zombie children that nobody else waits for. A zombie is
// considered only from its second scan on: os/exec reaps its own children
// within microseconds, so most are gone by then and the pidfd check (a
// walk over portico's descriptors) is rarely needed.
func (r *Reaper) scan() {
	now := time.Now()
	var candidates []int
	zombies := map[int]time.Time{}
	for _, pid := range Children() {
		p, ok := Stat(pid)
		if !ok || p.State != 'Z' {
			continue
		}
		first, known := r.seen[pid]
		if !known {
			first = now
		}
		zombies[pid] = first
		if known {
			candidates = append(candidates, pid)
		}
	}
	r.seen = zombies
	if len(candidates) == 0 {
		return
	}
	waited, pidfds := waitedFor()
	for _, pid := range candidates {
		if waited[pid] || (!pidfds && now.Sub(zombies[pid]) < orphanAge) {
			continue
		}
		if Reap(pid) {
			delete(r.seen, pid)
			r.log.Debug("reaped an orphan", "pid", pid)
		}
	}
}

// ReapOrphans reaps, once and now, every zombie child of this process
// that no os.Process waits for (pidfds tell; without them it does
// nothing). It returns how many it reaped. A handler that just killed
// adopted orphans calls it, so none is left a zombie even where no Reaper
// runs.
func ReapOrphans() int {
	var zombies []int
	for _, pid := range Children() {
		if p, ok := Stat(pid); ok && p.State == 'Z' {
			zombies = append(zombies, pid)
		}
	}
	if len(zombies) == 0 {
		return 0
	}
	waited, ok := waitedFor()
	if !ok {
		return 0
	}
	n := 0
	for _, pid := range zombies {
		if !waited[pid] && Reap(pid) {
			n++
		}
	}
	return n
}

// Reap waits for pid if it is a zombie child of this process, and says
// whether it did. Callers must know that no os.Process waits for pid.
func Reap(pid int) bool {
	var ws unix.WaitStatus
	got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	return err == nil && got == pid
}

// waitedFor returns the pids this process holds a pidfd for (os/exec
// children whose Wait has not returned), and whether pidfds are in use
// here at all.
func waitedFor() (map[int]bool, bool) {
	out := map[int]bool{}
	if !pidfdsWork() {
		return out, false
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out, false
	}
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || link != "anon_inode:[pidfd]" {
			continue
		}
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					out[pid] = true
				}
			}
		}
	}
	return out, true
}
