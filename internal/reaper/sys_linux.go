package reaper

import (
	"os"

	"golang.org/x/sys/unix"
)

// BecomeSubreaper marks this process a child subreaper (process-wide,
// idempotent, inherited by no child).
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// pidfdsWork reports whether this kernel has pidfds (Linux 5.4+), with
// which Go holds one for every child it started until its Wait returns.
func pidfdsWork() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
