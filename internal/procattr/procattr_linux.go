// Package procattr sets what portico asks of the system for the programs
// it starts (CGI scripts, WSGI workers), where the system has it: Linux
// has every attribute; elsewhere the calls say what they could not do.
package procattr

import "syscall"

// DieWithParent has the program killed when portico ends, however it
// ends (SIGKILL, a crash): nothing is left running that nobody answers
// for. It reports whether the system does that.
func DieWithParent(a *syscall.SysProcAttr) bool {
	a.Pdeathsig = syscall.SIGKILL
	return true
}

// IntoCgroup starts the program in the cgroup open as fd
// (CLONE_INTO_CGROUP), reporting whether the system can.
func IntoCgroup(a *syscall.SysProcAttr, fd int) bool {
	a.UseCgroupFD, a.CgroupFD = true, fd
	return true
}

// NoCgroup undoes IntoCgroup.
func NoCgroup(a *syscall.SysProcAttr) { a.UseCgroupFD, a.CgroupFD = false, 0 }
