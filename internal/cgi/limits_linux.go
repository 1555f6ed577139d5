package cgi

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"portico/internal/config"
)

// How the rlimits of cfg.Limits get onto a script.
//
// os/exec has no rlimit field, and rlimits cannot be lowered on portico
// itself around the fork: they belong to the whole process, so every
// request in flight (and portico's own CPU time) would be hit. prlimit(2)
// right after Start is racy: by then the script runs, and what it forks
// in its first instructions inherits no limit (a fork bomb's first round
// escapes "processes"). Two race-free ways are used:
//
//   - traced start (the fast one): the child asks to be traced
//     (PTRACE_TRACEME, Go's SysProcAttr.Ptrace) just before its execve; a
//     traced process stops with SIGTRAP after a successful execve, before
//     the first instruction of the script. portico sets the limits with
//     prlimit(2) and detaches. Cost: a stop, a waitid and a detach. ptrace
//     requests must come from the thread that forked, so Start and the
//     detach run on one locked OS thread. prlimit on another user's
//     process needs CAP_SYS_RESOURCE, so this is used when scripts run as
//     portico's own user, or portico has that capability. (The kernel's
//     rule for a traced execve applies: a set-user-ID script started by a
//     portico without CAP_SYS_PTRACE runs without its extra privilege.)
//   - the exec shim (everywhere else, e.g. root without CAP_SYS_RESOURCE
//     in a container, or where ptrace is forbidden): the child execs
//     portico's own binary (/proc/self/exe) with the limits in one
//     environment variable; before main runs, RunShim lowers its own
//     limits (always allowed) and execs the script with the variable
//     removed. Cost: one more exec per request, of a larger binary; and a
//     script that cannot be executed is a 500 (the shim's exit) rather
//     than a 403.
//
// A traced start that fails with EPERM (ptrace forbidden by seccomp or
// Yama) switches the handler to the shim for good, with one warning.

// rlimit is one resource limit to set on every script.
type rlimit struct {
	resource int
	name     string
	value    unix.Rlimit
}

// rlimitsOf turns the config's limits into rlimits (config validated them).
func rlimitsOf(l config.CGILimits) []rlimit {
	var out []rlimit
	if l.CPU > 0 {
		// Whole seconds, rounded up. SIGXCPU at the soft limit (a script
		// may catch it to clean up), SIGKILL one second later.
		secs := uint64((l.CPU.D() + time.Second - 1) / time.Second)
		out = append(out, rlimit{unix.RLIMIT_CPU, "cpu", unix.Rlimit{Cur: secs, Max: secs + 1}})
	}
	if l.Memory > 0 {
		out = append(out, rlimit{unix.RLIMIT_AS, "memory", unix.Rlimit{Cur: uint64(l.Memory), Max: uint64(l.Memory)}})
	}
	if l.Files > 0 {
		out = append(out, rlimit{unix.RLIMIT_NOFILE, "files", unix.Rlimit{Cur: uint64(l.Files), Max: uint64(l.Files)}})
	}
	if l.Processes > 0 {
		out = append(out, rlimit{unix.RLIMIT_NPROC, "processes", unix.Rlimit{Cur: uint64(l.Processes), Max: uint64(l.Processes)}})
	}
	return out
}

// limiter starts scripts with their rlimits set.
type limiter struct {
	limits []rlimit
	shimKV string // shimEnv=... for the exec shim
	// useShim is set when the traced start cannot work here.
	useShim atomic.Bool
	warn    func(msg string, args ...any)
}

// newLimiter prepares the limits; sameUser tells whether scripts run as
// portico's own user (prlimit on them needs no capability then).
func newLimiter(l config.CGILimits, sameUser bool, warn func(string, ...any)) *limiter {
	lim := &limiter{limits: rlimitsOf(l), warn: warn}
	parts := make([]string, 0, len(lim.limits))
	for _, rl := range lim.limits {
		parts = append(parts, fmt.Sprintf("%d=%d:%d", rl.resource, rl.value.Cur, rl.value.Max))
	}
	lim.shimKV = shimEnv + "=" + strings.Join(parts, ",")
	if !sameUser && !hasCapability(unix.CAP_SYS_RESOURCE) {
		lim.useShim.Store(true)
	}
	return lim
}

// start starts cmd with the limits in place; with no limits it is
// cmd.Start. A cmd that failed to start cannot be started again (os/exec
// forbids it): fresh builds a new one, as for an ETXTBSY retry.
func (l *limiter) start(cmd *exec.Cmd, fresh func() *exec.Cmd) (*exec.Cmd, error) {
	if len(l.limits) == 0 {
		return cmd, cmd.Start()
	}
	if !l.useShim.Load() {
		err := l.startTraced(cmd)
		if !errors.Is(err, syscall.EPERM) {
			return cmd, err
		}
		if l.useShim.CompareAndSwap(false, true) {
			l.warn("cgi: cannot set limits on a traced script here; scripts with limits start through portico's exec shim from now on", "err", err)
		}
		cmd = fresh()
	}
	l.throughShim(cmd)
	return cmd, cmd.Start()
}

// throughShim makes cmd run the exec shim, which runs the script.
func (l *limiter) throughShim(cmd *exec.Cmd) {
	args := make([]string, 0, len(cmd.Args)+2)
	args = append(args, shimArg0, cmd.Path)
	cmd.Args = append(args, cmd.Args...)
	cmd.Path = "/proc/self/exe"
	cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], l.shimKV)
}

// startTraced starts cmd stopped at its first instruction, sets the
// limits and lets it go.
func (l *limiter) startTraced(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sys := *cmd.SysProcAttr
	sys.Ptrace = true
	cmd.SysProcAttr = &sys
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	// WNOWAIT: a child that died instead of stopping stays for cmd.Wait.
	var info childInfo
	for {
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PID, uintptr(pid), uintptr(unsafe.Pointer(&info)),
			unix.WSTOPPED|unix.WEXITED|unix.WNOWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			_ = cmd.Process.Kill()
			return fmt.Errorf("waiting for the script to stop at exec: %w", e)
		}
		break
	}
	const cldTrapped = 4 // CLD_TRAPPED: a ptrace stop
	if info.code != cldTrapped {
		return nil // it is gone already (killed): cmd.Wait will say how
	}
	err := l.apply(pid)
	// Detach, passing on a signal that is not the exec SIGTRAP (one sent
	// to the new script in the same instant, by a timeout or shutdown).
	sig := int(info.status)
	if sig == int(unix.SIGTRAP) {
		sig = 0
	}
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, uintptr(sig), 0, 0); e != 0 && err == nil {
		err = fmt.Errorf("ptrace detach: %w", e)
	}
	if err != nil {
		// Never let a script run without its limits. EPERM (from
		// prlimit) sends the caller to the shim; the killed child is
		// reaped by cmd.Wait in the caller's retry path.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	return err
}

// apply sets the limits on pid.
func (l *limiter) apply(pid int) error {
	for _, rl := range l.limits {
		v := rl.value
		if err := unix.Prlimit(pid, rl.resource, &v, nil); err != nil {
			return fmt.Errorf("setting the %s limit: %w", rl.name, err)
		}
	}
	return nil
}

// childInfo is the siginfo_t that waitid(2) fills for a child (the
// SIGCHLD layout; x/sys/unix leaves it opaque).
type childInfo struct {
	signo, errno, code, _ int32
	pid                   int32
	uid                   uint32
	status                int32
	_                     [100]byte
}

// hasCapability reports whether portico has capability c in its
// effective set.
func hasCapability(c int) bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && bits&(1<<uint(c)) != 0
		}
	}
	return false
}

func init() {
	if os.Getenv(shimEnv) != "" && len(os.Args) >= 3 && os.Args[0] == shimArg0 {
		os.Exit(runShim())
	}
}

// runShim is the exec shim: it lowers its own limits as shimEnv says and
// execs os.Args[1] with argv os.Args[2:] and the environment less
// shimEnv. It returns only on failure, with an exit status.
//
// Once the limits are set nothing may allocate: the address-space limit
// is usually below what the Go runtime has already reserved, so the heap
// could not grow (the runtime would die of "out of memory"). Everything is
// prepared first, the GC is off, and the limits and the execve are raw
// system calls. One difference from a direct start: the soft descriptor
// limit (when "files" is not set) is the one the Go runtime raised at the
// shim's start, not the one portico started with.
func runShim() int {
	debug.SetGCPercent(-1)
	runtime.LockOSThread()
	type limit struct {
		resource int
		value    unix.Rlimit
	}
	spec := os.Getenv(shimEnv)
	var limits []limit
	for item := range strings.SplitSeq(spec, ",") {
		res, vals, ok1 := strings.Cut(item, "=")
		cur, max, ok2 := strings.Cut(vals, ":")
		r, err1 := strconv.Atoi(res)
		c, err2 := strconv.ParseUint(cur, 10, 64)
		m, err3 := strconv.ParseUint(max, 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil {
			fmt.Fprintf(os.Stderr, "portico cgi shim: bad %s %q\n", shimEnv, spec)
			return 126
		}
		limits = append(limits, limit{r, unix.Rlimit{Cur: c, Max: m}})
	}
	var kept []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, shimEnv+"=") {
			kept = append(kept, kv)
		}
	}
	path, err1 := syscall.BytePtrFromString(os.Args[1])
	argv, err2 := syscall.SlicePtrFromStrings(os.Args[2:])
	envv, err3 := syscall.SlicePtrFromStrings(kept)
	if err := errors.Join(err1, err2, err3); err != nil {
		fmt.Fprintf(os.Stderr, "portico cgi shim: %v\n", err)
		return 126
	}
	prefix := "portico cgi shim: cannot set limits or exec " + os.Args[1] + ": "

	// No allocation from here on.
	var errno unix.Errno
	for i := range limits {
		_, _, errno = unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(limits[i].resource),
			uintptr(unsafe.Pointer(&limits[i].value)), 0, 0, 0)
		if errno != 0 {
			break
		}
	}
	for try := 0; errno == 0 && try < 4; try++ {
		_, _, errno = unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(path)),
			uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
		if errno != unix.ETXTBSY {
			break
		}
		// The file is being written (a deploy); it passes. ETXTBSY is
		// not 0, so a last failure is reported below.
		ts := unix.Timespec{Nsec: int64(try+1) * 10e6}
		unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		errno = 0
		if try == 3 {
			errno = unix.ETXTBSY
		}
	}
	rawStderr(prefix)
	rawStderr(errno.Error())
	rawStderr("\n")
	runtime.KeepAlive(limits)
	if errno == unix.ENOENT || errno == unix.EACCES {
		return 127
	}
	return 126
}

// rawStderr writes s to stderr without allocating.
func rawStderr(s string) {
	if len(s) > 0 {
		unix.RawSyscall(unix.SYS_WRITE, 2, uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(len(s)))
	}
}
