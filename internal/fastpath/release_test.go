//go:build linux

package fastpath

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"
)

// The release decision, round by round of the parker's timer.
func TestReleaserDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &releaser{wave: 10, minInterval: 10 * time.Second, maxDelay: time.Minute, born: t0}
	steps := []struct {
		at    time.Duration
		parks int
		want  bool
		why   string
	}{
		{1 * time.Second, 5, false, "fewer than a wave"},
		{2 * time.Second, 12, false, "a wave, still parking"},
		{3 * time.Second, 12, true, "a wave, calm"},
		{4 * time.Second, 30, false, "a second wave, still parking"},
		{5 * time.Second, 30, false, "calm, but within minInterval of the last"},
		{13 * time.Second, 30, true, "calm, minInterval passed"},
		{14 * time.Second, 35, false, "fewer than a wave since"},
		{24 * time.Second, 35, false, "calm, still fewer than a wave"},
		{30 * time.Second, 60, false, "a wave, parking on"},
		{72 * time.Second, 90, false, "parking on, maxDelay not yet"},
		{74 * time.Second, 120, true, "parking on, maxDelay passed"},
	}
	for _, s := range steps {
		if got := r.due(t0.Add(s.at), s.parks); got != s.want {
			t.Errorf("at %v with %d parks (%s): due %v, want %v", s.at, s.parks, s.why, got, s.want)
		}
	}
	never := &releaser{wave: -1, minInterval: time.Second, maxDelay: time.Minute, born: t0}
	for i := 1; i < 5; i++ {
		if never.due(t0.Add(time.Duration(i)*time.Hour), 1000*i) {
			t.Fatal("released with a negative wave")
		}
	}
}

// After a wave of parked connections the parker returns memory once,
// and not again before its interval, however many park meanwhile.
func TestReleaseAfterParkWave(t *testing.T) {
	var mu sync.Mutex
	var calls []time.Time
	const every = 600 * time.Millisecond
	ts := newTestServer(t, Options{IdleTimeout: time.Minute, ParkIdleAfter: 20 * time.Millisecond, ParkReleaseWave: 8,
		releaseEvery: every,
		releaseFunc: func() {
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
		}})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(calls)
	}
	waitCalls := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d releases, want %d", count(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var conns []net.Conn
	openParked := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			c, br := ts.dial(t)
			get(t, c, br, "/a", "hello a")
			conns = append(conns, c)
		}
		waitParked(t, ts.fl, len(conns))
	}
	openParked(5)
	time.Sleep(150 * time.Millisecond) // a few rounds, calm
	if n := count(); n != 0 {
		t.Fatalf("%d releases after fewer parks than a wave", n)
	}
	openParked(5)
	waitCalls(1)
	first := time.Now()
	// A second wave at once: no release before the interval passed.
	openParked(10)
	for time.Since(first) < every/2 {
		if n := count(); n != 1 {
			t.Fatalf("%d releases within %v of the first", n, time.Since(first))
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitCalls(2)
	mu.Lock()
	gap := calls[1].Sub(calls[0])
	mu.Unlock()
	if gap < every {
		t.Errorf("releases %v apart, want at least %v", gap, every)
	}
	// Woken connections still work.
	br := bufio.NewReader(conns[0])
	get(t, conns[0], br, "/a", "hello a")
}
