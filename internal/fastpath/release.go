//go:build linux

package fastpath

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Returning memory after a wave of parking. A burst of connections that
// then go idle leaves behind what served them (goroutine stacks, Go's
// socket state, buffers): free once they park, but the runtime keeps
// freed memory for a while in case it is needed again, so the process
// stays as large as the burst made it. After a wave (Options.
// ParkReleaseWave connections parked since the last release) the parker
// gives it back at once (debug.FreeOSMemory: a garbage collection, then
// every free page to the system), once the wave has calmed (a round of
// the parker's timer without a park), or anyway releaseMaxDelay after
// the last release while connections keep parking. Never more than once
// per releaseMinInterval: a collection costs CPU in proportion to the
// heap, and the memory of a server whose connections keep coming and
// going is reused anyway.
const (
	releaseMinInterval = 10 * time.Second
	releaseMaxDelay    = time.Minute
)

// releaser decides when the parker returns memory. Its fields are the
// timer goroutine's (runTimer), except running.
type releaser struct {
	wave        int           // parks that make a wave; <= 0: never release
	minInterval time.Duration // between two releases
	maxDelay    time.Duration // a release is due even while parks go on
	born        time.Time     // when the parker started
	last        time.Time     // the last release (zero: none yet)
	parksAtLast int           // parker.parks at the last release
	parksAtTick int           // parker.parks at the previous round
	release     func()        // debug.FreeOSMemory; tests count calls
	running     atomic.Bool   // a release is under way
	releases    atomic.Int32  // releases so far (tests)
}

func newReleaser(wave int) *releaser {
	return &releaser{wave: wave, minInterval: releaseMinInterval, maxDelay: releaseMaxDelay,
		born: time.Now(), release: debug.FreeOSMemory}
}

// due reports, at a round of the parker's timer with parks connections
// parked so far, whether memory should be released now.
func (r *releaser) due(now time.Time, parks int) bool {
	quiet := parks == r.parksAtTick
	r.parksAtTick = parks
	if r.wave <= 0 || parks-r.parksAtLast < r.wave || r.running.Load() {
		return false
	}
	if !r.last.IsZero() {
		since := now.Sub(r.last)
		if since < r.minInterval || !quiet && since < r.maxDelay {
			return false
		}
	} else if !quiet && now.Sub(r.born) < r.maxDelay {
		return false
	}
	r.last, r.parksAtLast = now, parks
	return true
}

// start releases memory on its own goroutine: a collection of a large
// heap takes a while, which must not delay the timer's idle deadlines.
func (r *releaser) start() {
	r.running.Store(true)
	go func() {
		defer r.running.Store(false)
		r.release()
		r.releases.Add(1)
	}()
}
