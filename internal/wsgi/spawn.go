package wsgi

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"

	"portico/internal/procattr"
)

// spawner starts worker processes from one goroutine locked to its OS
// thread, so that each worker dies with portico, however portico ends
// (SIGKILL, a crash, an OOM kill).
//
// Each worker is started with the parent-death signal (Linux
// PR_SET_PDEATHSIG, SysProcAttr.Pdeathsig) set to SIGKILL. The kernel
// sends it when the *thread* that forked the child exits, not the
// process: a worker forked from an ordinary goroutine would be killed the
// day its thread ends (the Go runtime ends a thread when a goroutine
// exits while locked to it, as some code does on purpose). Forking from
// a thread that stays locked to the spawner for the pool's whole life
// makes the signal mean exactly "portico is gone". The race where
// portico dies between fork and prctl is closed by the child itself:
// after prctl it compares getppid with the forking process's pid and
// signals itself when they differ (syscall.forkAndExecInChild does this
// whenever Pdeathsig is set).
type spawner struct {
	reqs chan spawnReq
	quit chan struct{} // closed by stop
	done chan struct{} // closed when the loop (and its thread) has ended
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan<- error
}

var errSpawnerStopped = errors.New("worker spawner stopped")

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	// Never unlocked: when the loop ends (the pool has stopped and reaped
	// every worker), the thread ends with it, and any child that somehow
	// outlived the pool gets its parent-death signal then.
	runtime.LockOSThread()
	defer close(s.done)
	for {
		select {
		case req := <-s.reqs:
			req.err <- req.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

// start runs cmd.Start on the spawner's thread, with the parent-death
// signal set.
func (s *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	procattr.DieWithParent(cmd.SysProcAttr)
	errc := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd: cmd, err: errc}:
	case <-s.done:
		return errSpawnerStopped
	}
	return <-errc
}

// stop ends the spawner; a later start fails with errSpawnerStopped.
// Call it once.
func (s *spawner) stop() {
	close(s.quit)
	<-s.done
}
