//go:build !linux

package procattr

import "syscall"

// DieWithParent: no parent-death signal here; programs are ended by
// their process group when portico shuts down in order.
func DieWithParent(*syscall.SysProcAttr) bool { return false }

// IntoCgroup: cgroups are Linux's.
func IntoCgroup(*syscall.SysProcAttr, int) bool { return false }

// NoCgroup undoes IntoCgroup.
func NoCgroup(*syscall.SysProcAttr) {}
