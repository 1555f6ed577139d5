package config

import "time"

// Bounds of the cgi limits: below the minimums no script could even start
// (an interpreter needs its stdio and a few libraries mapped).
const (
	minCGIMemory    = 1 << 20
	maxCGIFiles     = 1 << 20
	maxCGIProcesses = 1 << 22 // the kernel's own pid_max ceiling
	maxCGIKillGrace = 10 * time.Minute
)

// checkCGILimits validates kill_grace and the limits table of a cgi
// section; base is the section's key ("site[0].route[1].cgi").
func checkCGILimits(add addFunc, ps *positions, base string, c *CGI) {
	if c.KillGrace < 0 || c.KillGrace.D() > maxCGIKillGrace {
		add(ps, base+".kill_grace", "kill_grace must be between 0s and %s", maxCGIKillGrace)
	}
	l := c.Limits
	lb := base + ".limits"
	if l.CPU < 0 || (l.CPU > 0 && l.CPU.D() < time.Second) {
		add(ps, lb+".cpu", "cpu must be at least \"1s\" (the kernel counts whole seconds)")
	}
	if l.Memory < 0 || (l.Memory > 0 && l.Memory < minCGIMemory) {
		add(ps, lb+".memory", "memory must be at least \"1MB\" (no interpreter starts in less)")
	}
	if l.Files < 0 || (l.Files > 0 && l.Files < 3) || l.Files > maxCGIFiles {
		add(ps, lb+".files", "files must be between 3 (stdin, stdout, stderr) and %d", maxCGIFiles)
	}
	if l.Processes < 0 || l.Processes > maxCGIProcesses {
		add(ps, lb+".processes", "processes must be between 1 and %d", maxCGIProcesses)
	}
}
