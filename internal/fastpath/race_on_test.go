//go:build race

package fastpath

// raceEnabled: the race detector makes goroutine stacks larger (bigger
// frames), which memory tests allow for.
const raceEnabled = true
