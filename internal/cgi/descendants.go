package cgi

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"syscall"
	"time"

	"portico/internal/reaper"
)

// Finding everything a script started, to stop it with the script.
//
// Threat model. A script is the site's code, but it may be buggy or taken
// over, and it runs with whatever the request sends it. What it starts
// must not outlive its run: not past the timeout, not after the client
// went away, not after portico stops. A process group covers the plain
// case (a child left in the background) but not a descendant that calls
// setsid or setpgid (new session or group) and double-forks so that its
// parent is gone: kill(-pgid) misses it, and under init it is nobody's.
//
// What is done:
//   - where portico may create cgroups (v2), each run starts inside its
//     own cgroup (cgroup.go), and its processes are exactly that cgroup's:
//     nothing a script does can take a process out of it;
//   - everywhere, portico is a child subreaper (package reaper), so an
//     orphaned descendant is re-parented to portico, never to init: every
//     process a script ever started stays in portico's process tree;
//   - each run's environment holds a token, PORTICO_CGI_ID=<handler
//     id>-<run number>, inherited by everything the script starts;
//   - a run's processes are: its cgroup's, its process group, the
//     processes in portico's tree that carry its token, and everything
//     below them (and below the script while it lives, whatever their
//     environment).
//
// They get SIGTERM, kill_grace, then SIGKILL (repeated until none is left,
// so a process forking as fast as it can is caught), when the run is
// stopped (timeout, client gone, shutdown) and when the script exits
// leaving any behind; then the adopted ones are reaped. Only processes
// inside portico's own tree are ever signalled, so a token copied into
// some other process's environment cannot make portico kill it. And the
// script's direct child carries a parent-death SIGKILL, for when portico
// itself is killed.
//
// What is not covered without cgroups: a descendant that both leaves the
// tree of the living script (its parent exits) and drops or changes the
// token (exec with a scrubbed environment, "setsid env -i ...", or with
// the token of a run that is over, which scripts running as the same user
// can read in /proc). It stays under portico, is reaped when it exits, but
// cannot be told apart from what other scripts or a WSGI app started, so
// it is not killed. With cgroups it is. Processes handed to another
// service (cron, systemd-run, at) are out of any supervisor's reach.
//
// Cost: when a script exits by itself, one kill(2) on its group, and a
// read of its cgroup.procs (with cgroups; plus a mkdir and rmdir per run),
// or (without) a read of
// /proc/self/task/PID/children (where adopted orphans are listed) and of
// /proc/PID/environ for each process in it that is not one of this
// handler's running scripts; the walk over /proc only when something was
// left.

// tokenEnv names the variable that marks every process of one run.
const tokenEnv = "PORTICO_CGI_ID"

// newHandlerID returns the random part of a handler's tokens, so two
// handlers (a reload, another route) never share one.
func newHandlerID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// How long the kill loop lasts at most, and its pace.
const (
	killRounds = 100
	killPause  = 10 * time.Millisecond
)

// mayHaveStrays is the cheap check made after every run: is anything of
// it possibly alive? (A zombie left in the group counts too; members
// then decides.)
func (p *proc) mayHaveStrays() bool {
	if syscall.Kill(-p.pgid, 0) == nil {
		return true
	}
	if p.cgroup.path != "" {
		// Exact: nothing the script started can have left its cgroup.
		return len(cgroupProcs(p.cgroup.path)) > 0
	}
	// After the script exited, its surviving children were adopted by
	// portico; whatever they started is below them.
	for _, pid := range reaper.Adopted() {
		if pid == p.pid || p.h.isRunning(pid) {
			continue
		}
		if reaper.HasEnv(pid, p.token) {
			return true
		}
	}
	return false
}

// members returns the live processes of this run (the script itself only
// while scriptAlive): its group, the carriers of its token in portico's
// tree, and everything below them.
func (p *proc) members(scriptAlive bool) []reaper.Proc {
	snap := reaper.Snapshot()
	self := os.Getpid()
	ours := make(map[int]bool)
	for _, pid := range reaper.Descendants(snap, self) {
		ours[pid] = true
	}
	var roots []int
	if scriptAlive {
		roots = append(roots, p.pid)
	}
	for pid := range ours {
		if pid == p.pid {
			continue
		}
		if snap[pid].PGID == p.pgid || (!snap[pid].Dead() && reaper.HasEnv(pid, p.token)) {
			roots = append(roots, pid)
		}
	}
	// Whatever is in the run's cgroup is the run's, in portico's tree or
	// not (without a subreaper, orphans go to init).
	inCgroup := make(map[int]bool)
	if p.cgroup.path != "" {
		for _, pid := range cgroupProcs(p.cgroup.path) {
			if _, ok := snap[pid]; ok {
				inCgroup[pid] = true
				roots = append(roots, pid)
			}
		}
	}
	var out []reaper.Proc
	seen := make(map[int]bool)
	for _, pid := range append(roots, reaper.Descendants(snap, roots...)...) {
		if seen[pid] || !(ours[pid] || inCgroup[pid]) || snap[pid].Dead() || (pid == p.pid && !scriptAlive) {
			continue
		}
		seen[pid] = true
		out = append(out, snap[pid])
	}
	return out
}

// signalAll sends sig to the run's group, and to each of procs outside
// it. Once only: a second SIGTERM arriving while a shell runs its trap
// would start the trap again, or cut it.
func (p *proc) signalAll(sig syscall.Signal, procs []reaper.Proc) {
	_ = syscall.Kill(-p.pgid, sig)
	for _, pr := range procs {
		if pr.PGID != p.pgid {
			_ = syscall.Kill(pr.PID, sig)
			p.signalled = append(p.signalled, pr.PID)
		}
	}
}

// awaitSignalled waits (a bounded while) until the processes outside the
// group that were signalled have exited, so that they can be reaped.
func (p *proc) awaitSignalled() {
	for round := 0; round < killRounds; round++ {
		alive := false
		for _, pid := range p.signalled {
			if st, ok := reaper.Stat(pid); ok && !st.Dead() {
				alive = true
				break
			}
		}
		if !alive {
			return
		}
		time.Sleep(killPause)
	}
}

// terminate stops a running script and all of its run: SIGTERM, then
// SIGKILL after the grace period (or at once when Close runs out of
// time); it returns once the script is reaped. What is left of the run
// is then cleanUp's.
func (p *proc) terminate() {
	p.signalAll(syscall.SIGTERM, p.members(true))
	t := time.NewTimer(p.h.grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return
	case <-t.C:
	case <-p.h.hardKill:
	}
	p.signalAll(syscall.SIGKILL, p.members(true))
	<-p.exited
}

// cleanUp ends whatever the run left once the script is reaped: SIGTERM
// (unless terminate sent it already), up to the grace period for it to
// go, then SIGKILL until nothing is left; then it reaps the adopted
// orphans it killed.
func (p *proc) cleanUp(termSent bool) {
	if !p.mayHaveStrays() {
		if termSent {
			// What terminate killed may be portico's zombies by now
			// (adopted orphans): not left for a Reaper that may not run.
			p.awaitSignalled()
			reaper.ReapOrphans()
		}
		return
	}
	left := p.members(false)
	if len(left) == 0 {
		reaper.ReapOrphans() // zombies left in the group, now portico's
		return
	}
	if !termSent {
		p.signalAll(syscall.SIGTERM, left)
	}
	deadline := time.Now().Add(p.h.grace)
	for len(left) > 0 && time.Now().Before(deadline) {
		select {
		case <-time.After(killPause):
		case <-p.h.hardKill:
			deadline = time.Time{}
		}
		left = p.members(false)
	}
	for round := 0; len(left) > 0 && round < killRounds; round++ {
		p.signalAll(syscall.SIGKILL, left)
		time.Sleep(killPause)
		left = p.members(false)
	}
	if len(left) > 0 {
		p.h.log.Error("cgi: processes of a script survived SIGKILL", "script", p.script, "count", len(left))
	}
	reaper.ReapOrphans()
}
