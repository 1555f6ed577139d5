//go:build unix && !linux

package cgi

import (
	"os/exec"

	"portico/internal/config"
)

// Scripts start without rlimits here: both ways of setting them
// race-free (limits_linux.go) are Linux's (prlimit(2) on a traced
// execve, or an exec shim through /proc/self/exe). A handler with limits
// says so once, when it is built.
type limiter struct{}

func newLimiter(l config.CGILimits, _ bool, warn func(string, ...any)) *limiter {
	if l.CPU > 0 || l.Memory > 0 || l.Files > 0 || l.Processes > 0 {
		warn("cgi: limits are set on Linux only; scripts run without them on this system")
	}
	return &limiter{}
}

// start is cmd.Start.
func (l *limiter) start(cmd *exec.Cmd, _ func() *exec.Cmd) (*exec.Cmd, error) {
	return cmd, cmd.Start()
}
