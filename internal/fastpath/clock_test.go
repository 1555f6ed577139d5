package fastpath

import (
	"testing"
	"time"
)

func TestClockFollowsTimeNow(t *testing.T) {
	var k clock
	prev := k.now()
	if prev.IsZero() {
		t.Fatal("first reading is zero")
	}
	base := k.base
	for i := 0; i < 1000; i++ {
		before := time.Now()
		got := k.now()
		after := time.Now()
		// Monotonic parts: what Sub and Before compare.
		if got.Before(before) || got.After(after) {
			t.Fatalf("reading %v outside [%v, %v]", got, before, after)
		}
		if got.Before(prev) {
			t.Fatalf("went back: %v after %v", got, prev)
		}
		// The wall part too: Date and the logs read it.
		if w := got.Round(0); w.Before(before.Round(0).Add(-time.Millisecond)) || w.After(after.Round(0).Add(time.Millisecond)) {
			t.Fatalf("wall reading %v outside [%v, %v]", w, before, after)
		}
		prev = got
	}
	if k.base != base {
		t.Error("the base was read again within a second: each reading costs two clock reads")
	}
}

func TestClockRebasesAfterASecond(t *testing.T) {
	k := clock{base: time.Now().Add(-2 * clockRebase)}
	old := k.base
	got := k.now()
	if k.base == old || got != k.base {
		t.Errorf("base %v kept after %v: a step of the system clock would never show", old, 2*clockRebase)
	}
	if d := time.Since(got); d < 0 || d > time.Second {
		t.Errorf("reading %v is %v from now", got, d)
	}
}
