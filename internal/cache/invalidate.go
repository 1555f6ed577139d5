package cache

import (
	"hash/maphash"
	"sync/atomic"
)

// invalidationSlots is the number of per-key invalidation stamps kept. Keys
// share slots by hash: a collision only makes a concurrent fetch of another
// key skip storing once, never keeps a stale entry.
const invalidationSlots = 1024

// invalidations stamps every invalidation (an unsafe method's, section 4.4,
// or a purge) with a rising epoch, so that a fetch that started before it
// does not store the response it got afterwards: a GET in flight while a
// POST changes the resource carries the old representation, and storing it
// after the POST's invalidation would serve it until it expires.
//
// A fetch records begin() before going upstream and stores through a guard
// that is checked before and after the store's write (see store.Set): an
// invalidation between the two is caught by the second check, which
// deletes what was just written.
type invalidations struct {
	seed  maphash.Seed
	epoch atomic.Uint64
	all   atomic.Uint64 // epoch of the last purge (any key may be affected)
	slots [invalidationSlots]atomic.Uint64
}

func newInvalidations() *invalidations {
	return &invalidations{seed: maphash.MakeSeed()}
}

// begin is the epoch a fetch starts at.
func (iv *invalidations) begin() uint64 { return iv.epoch.Load() }

func (iv *invalidations) slot(key string) *atomic.Uint64 {
	return &iv.slots[maphash.String(iv.seed, key)%invalidationSlots]
}

// key stamps an invalidation of key; call it before deleting the key.
func (iv *invalidations) key(key string) {
	iv.slot(key).Store(iv.epoch.Add(1))
}

// purge stamps an invalidation of any key; call it before purging.
func (iv *invalidations) purge() {
	iv.all.Store(iv.epoch.Add(1))
}

// current reports whether nothing invalidated key since start.
func (iv *invalidations) current(key string, start uint64) bool {
	return iv.slot(key).Load() <= start && iv.all.Load() <= start
}

// guard is the check a store runs around a write of key's entries for a
// fetch that began at start.
func (iv *invalidations) guard(key string, start uint64) func() bool {
	return func() bool { return iv.current(key, start) }
}
