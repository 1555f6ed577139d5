package cgi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"portico/internal/procattr"
)

// shimEnv carries the limits to the exec shim: "resource=cur:max,...".
const shimEnv = "PORTICO_CGI_RLIMITS"

// shimArg0 is the exec shim's argv[0]; argv[1] is the program to run and
// argv[2:] its own argv.
const shimArg0 = "portico-cgi-exec"

// start launches the script with its pipes and goroutines.
func (h *Handler) start(r *http.Request, s *script, body io.Reader, spooled *os.File, clen int64) (*proc, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	var inR, inW *os.File
	token := tokenEnv + "=" + h.id + "-" + strconv.FormatUint(h.runs.Add(1), 10)
	cmd := &exec.Cmd{
		Path:   s.prog,
		Args:   s.args,
		Env:    append(h.env(r, s, clen), token),
		Dir:    s.dir,
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:    true,
			Credential: h.cred,
		},
		WaitDelay: h.grace,
	}
	// Scripts die with portico, however it ends (SIGKILL, crash).
	procattr.DieWithParent(cmd.SysProcAttr)
	if spooled != nil {
		cmd.Stdin = spooled
	} else if body != nil {
		inR, inW, err = os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return nil, err
		}
		cmd.Stdin = inR
	}
	var cg runCgroup
	if h.cg.on() {
		if rc, err := h.cg.acquire(); err == nil {
			cg = rc
			procattr.IntoCgroup(cmd.SysProcAttr, rc.fd)
		}
	}
	base := *cmd.SysProcAttr // the limiter may change its copy of it
	fresh := func() *exec.Cmd {
		sys := base
		return &exec.Cmd{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir, Stdin: cmd.Stdin,
			Stdout: cmd.Stdout, Stderr: cmd.Stderr, SysProcAttr: &sys, WaitDelay: cmd.WaitDelay}
	}
	for try := 0; ; try++ {
		cmd, err = h.limiter.start(cmd, fresh)
		// ETXTBSY: the file is open for writing somewhere (being deployed,
		// or a descriptor inherited by a concurrent fork); it passes.
		if !errors.Is(err, syscall.ETXTBSY) || try == 3 {
			break
		}
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
		cmd = fresh()
	}
	if err != nil && cg.path != "" && h.cg.vanished(cg) {
		// Someone removed the run's cgroup under portico: run without
		// one (and without cgroups from now on) rather than fail.
		h.log.Warn("cgi: a run cgroup was removed by someone else; scripts run without cgroups from now on", "cgroup", cg.path)
		cg = runCgroup{}
		procattr.NoCgroup(&base)
		cmd, err = h.limiter.start(fresh(), fresh)
	}
	// The child has its copies; the parent keeps only its own ends.
	outW.Close()
	errW.Close()
	if inR != nil {
		inR.Close()
	}
	if err != nil {
		if cg.path != "" {
			h.cg.release(cg)
		}
		outR.Close()
		errR.Close()
		if inW != nil {
			inW.Close()
		}
		return nil, err
	}
	p := &proc{
		h:          h,
		cmd:        cmd,
		pid:        cmd.Process.Pid,
		pgid:       cmd.Process.Pid,
		token:      token,
		cgroup:     cg,
		script:     s.name,
		stdout:     outR,
		stderr:     errR,
		exited:     make(chan struct{}),
		stop:       make(chan int32, 1),
		stdoutDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	h.running.Store(p.pid, struct{}{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.supervise(r.Context().Done(), time.NewTimer(h.timeout))
	go p.logStderr()
	if inW != nil {
		go p.feed(inW, body)
	}
	return p, nil
}

// finish is called once ServeHTTP stops reading stdout; it returns when the
// script is reaped, its group gone and its pipes closed.
func (p *proc) finish() {
	p.closeStdout()
	close(p.stdoutDone)
	<-p.done
}
