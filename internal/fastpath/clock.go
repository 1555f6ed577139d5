package fastpath

import "time"

// clock reads the time with one clock read instead of time.Now's two.
// time.Now reads the wall clock and the monotonic clock, each a TSC
// read through the vDSO (25-60 ns on a VM); a keep-alive request needs
// the time twice (its arrival and its end), so at 170k requests a second
// on one core the reads were 2-3% of the CPU. clock keeps one full
// reading as its base and adds the monotonic time elapsed since, which
// time.Since reads alone.
//
// The wall time so derived follows the monotonic clock for at most a
// second, then the base is read again: a step of the system clock (NTP,
// an operator) shows in Date and the logs within a second. (nginx reads
// the time once per turn of its event loop, for every event of it.)
// A clock belongs to one conn, used by one goroutine at a time.
type clock struct {
	base time.Time // a time.Now reading, monotonic part included
}

// clockRebase is how long a base serves.
const clockRebase = time.Second

// now returns the current time, with its monotonic part, as time.Now.
func (k *clock) now() time.Time {
	d := time.Since(k.base) // the zero base: a full read, then over a second
	if d >= clockRebase || d < 0 {
		k.base = time.Now()
		return k.base
	}
	return k.base.Add(d)
}
