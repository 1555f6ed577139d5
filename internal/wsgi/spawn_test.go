package wsgi

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"portico/internal/config"
)

// The parent-death signal fires when the thread that forked a worker
// exits, not only when portico does. A worker started from a goroutine
// that ends locked to its thread (so the runtime ends the thread) must
// live on: the fork happened on the pool's own spawner thread.
func TestWorkerOutlivesTheThreadThatStartedIt(t *testing.T) {
	p, err := Provision(config.WSGI{App: "envapp:application", Dir: testdata(t, "app"), Workers: 1,
		Python: python(t), Timeout: config.Duration(10 * time.Second)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.makeDir(); err != nil {
		t.Fatal(err)
	}
	p.spawn = newSpawner()
	t.Cleanup(func() {
		p.spawn.stop()
		os.RemoveAll(p.dir)
	})
	type result struct {
		pr  *proc
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		pr, err := p.start(newWorker(1, filepath.Join(p.dir, "w1.sock"), p.log))
		res <- result{pr, err}
	}()
	r := <-res
	if r.err != nil {
		t.Fatalf("start: %v", r.err)
	}
	t.Cleanup(func() {
		r.pr.kill("test done")
		<-r.pr.done
	})
	// The starting thread is gone by now (its goroutine has returned); a
	// worker killed by its exit would be dead within moments.
	time.Sleep(500 * time.Millisecond)
	if !r.pr.alive() {
		t.Fatalf("worker died after the thread that started it ended: %v", r.pr.cmd.ProcessState)
	}
}

// Every worker carries the parent-death signal (SIGKILL) and is a child
// of portico itself.
func TestWorkersHaveParentDeathSignal(t *testing.T) {
	tp := newTestPool(t, 2, 10*time.Second)
	for _, pid := range tp.pids() {
		if _, ppid, _, ok := procStat(pid); !ok || ppid != os.Getpid() {
			t.Errorf("worker %d: parent %d, want %d", pid, ppid, os.Getpid())
		}
	}
	for _, w := range tp.workers {
		if sig := w.cur.cmd.SysProcAttr.Pdeathsig; sig != 9 {
			t.Errorf("worker %d: Pdeathsig %v, want SIGKILL", w.id, sig)
		}
	}
}
