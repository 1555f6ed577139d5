package wsgi

import (
	"io"
	"os"
	"sync"
	"time"
)

// spoolMem is how much of a response is held in memory per request before
// the rest waits in an unlinked temp file for a slow client.
const spoolMem = 256 << 10

// respSpool is the buffer between a worker's response (put, by the
// producer goroutine) and the client (take, by the handler): memory first,
// then a temp file, so the producer never waits for the client.
type respSpool struct {
	dir  string
	wake chan struct{} // a token whenever data or the end arrives

	mu        sync.Mutex
	mem       []byte
	file      *os.File
	fw, fr    int64 // write and read offsets in file
	done      bool
	err       error
	abandoned bool
}

func (s *respSpool) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *respSpool) put(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.abandoned {
		return nil
	}
	defer s.signal()
	if s.file == nil && len(s.mem)+len(b) <= spoolMem {
		s.mem = append(s.mem, b...)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "resp-")
		if err != nil {
			return err
		}
		os.Remove(f.Name()) // the descriptor keeps it; nothing is left behind
		s.file = f
	}
	n, err := s.file.WriteAt(b, s.fw)
	s.fw += int64(n)
	return err
}

// take copies pending bytes into buf. With nothing pending it returns
// 0 and nil while the producer runs (wait on wake), then io.EOF or the
// producer's error.
func (s *respSpool) take(buf []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mem) > 0 {
		n := copy(buf, s.mem)
		s.mem = s.mem[n:]
		return n, nil
	}
	if s.file != nil && s.fr < s.fw {
		n, err := s.file.ReadAt(buf[:min(int64(len(buf)), s.fw-s.fr)], s.fr)
		s.fr += int64(n)
		if n > 0 || err == nil {
			return n, nil
		}
		return 0, err
	}
	if s.done {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.EOF
	}
	return 0, nil
}

func (s *respSpool) finish(err error) {
	s.mu.Lock()
	s.done, s.err = true, err
	s.mu.Unlock()
	s.signal()
}

// abandon drops what is buffered and stops the producer by closing the
// worker's connection.
func (s *respSpool) abandon(body io.Closer) {
	s.mu.Lock()
	s.abandoned = true
	s.mem = nil
	s.mu.Unlock()
	body.Close()
}

func (s *respSpool) isAbandoned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abandoned
}

// close releases the temp file; call it once the producer is done.
func (s *respSpool) close() {
	if s.file != nil {
		s.file.Close()
	}
}

// watchdog kills a frozen worker: it fires when d passes without a reset.
// Once stop has returned, it can no longer fire, so a worker released
// after stop is never killed by a late timer.
type watchdog struct {
	mu      sync.Mutex
	t       *time.Timer
	d       time.Duration
	fired   bool
	stopped bool
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	wd := &watchdog{d: d}
	wd.mu.Lock()
	defer wd.mu.Unlock()
	wd.t = time.AfterFunc(d, func() {
		wd.mu.Lock()
		defer wd.mu.Unlock()
		if wd.stopped {
			return
		}
		wd.fired = true
		fire()
	})
	return wd
}

func (wd *watchdog) reset() {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if !wd.stopped && !wd.fired {
		wd.t.Reset(wd.d)
	}
}

// hasFired reports whether the watchdog has fired (it may still).
func (wd *watchdog) hasFired() bool {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	return wd.fired
}

// stop disarms the watchdog and reports whether it had fired.
func (wd *watchdog) stop() bool {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	wd.stopped = true
	wd.t.Stop()
	return wd.fired
}
