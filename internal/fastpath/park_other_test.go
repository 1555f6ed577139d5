//go:build !linux

package fastpath

import "testing"

// Without parking, a "parked" connection is one waiting on its goroutine.
const parkedBudget = 8192

func waitParked(testing.TB, *Listener, int) {}

func waitDetached(testing.TB, *Listener, int) {}
