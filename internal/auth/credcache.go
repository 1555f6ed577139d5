package auth

import (
	"sync"
	"time"
)

// How long a checked credential is remembered. A reload builds a new
// gate with an empty cache, so a removed user or a changed password
// takes effect on reload regardless.
const (
	cacheTTL         = 10 * time.Minute
	failTTL          = time.Minute
	defaultCacheSize = 10000
)

// credCache remembers the outcome of checking a credential, keyed by a
// keyed hash of it. It holds at most size entries: when full, expired
// entries go first, then arbitrary ones (a flood of random credentials
// cannot grow it).
type credCache struct {
	mu      sync.RWMutex
	size    int
	entries map[[32]byte]credEntry
}

type credEntry struct {
	ok      bool
	expires int64 // unix nanoseconds
}

func newCredCache(size int) *credCache {
	return &credCache{size: size, entries: make(map[[32]byte]credEntry)}
}

// get returns the remembered outcome for key, if any and not expired.
func (c *credCache) get(key [32]byte, now int64) (ok, found bool) {
	c.mu.RLock()
	e, found := c.entries[key]
	c.mu.RUnlock()
	if !found || e.expires <= now {
		return false, false
	}
	return e.ok, true
}

// put remembers an outcome until now+ttl.
func (c *credCache) put(key [32]byte, ok bool, now int64, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		c.evict(now)
	}
	c.entries[key] = credEntry{ok: ok, expires: now + int64(ttl)}
}

// evict drops expired entries, and then at least an eighth of the cache.
func (c *credCache) evict(now int64) {
	for k, e := range c.entries {
		if e.expires <= now {
			delete(c.entries, k)
		}
	}
	drop := c.size / 8
	for k := range c.entries {
		if len(c.entries) < c.size-drop {
			break
		}
		delete(c.entries, k)
	}
}

func (c *credCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
