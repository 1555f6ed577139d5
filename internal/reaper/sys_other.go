//go:build unix && !linux

package reaper

import "errors"

// BecomeSubreaper fails: a child subreaper is Linux's. Elsewhere an
// orphan of a script that left its process group goes to init, as under
// other servers; process groups still end the scripts themselves.
func BecomeSubreaper() error {
	return errors.New("a child subreaper is Linux's (prctl PR_SET_CHILD_SUBREAPER)")
}

// pidfdsWork is false: pidfds are Linux's, and without them ReapOrphans
// reaps nothing (the Reaper still reaps zombies that stay zombies).
func pidfdsWork() bool { return false }
