package cache

import (
	"container/list"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// store keeps entries by key. Errors are the store's business: Get reports
// a miss and Set drops the entry when the store is unavailable, so a broken
// store costs a trip upstream, never a client error.
type store interface {
	Get(ctx context.Context, key string) *entry
	// Set stores e until e.Expires. It may return before the entry is
	// visible (the Redis store writes in the background). When guard is
	// not nil it is checked before the write and again after it: false
	// before skips the write, false after deletes what was written (an
	// invalidation raced the fetch, see invalidations). Set reports whether
	// the store accepted the entry (for Redis: queued while Redis answers).
	Set(ctx context.Context, key string, e *entry, guard func() bool) bool
	// Healthy reports whether the store is answering (Redis: its last
	// call succeeded), so that a response is announced as stored only when
	// it can be.
	Healthy() bool
	Delete(ctx context.Context, key string)
	// Purge deletes the keys match accepts among those starting with
	// prefix and returns how many it deleted.
	Purge(ctx context.Context, prefix string, match func(key string) bool) (int, error)
	// PurgeTag deletes the entries tagged tag and returns how many.
	PurgeTag(ctx context.Context, tag string) (int, error)
	Close(ctx context.Context) error
}

// memoryStore is an LRU bounded by the approximate bytes of its entries.
type memoryStore struct {
	mu      sync.Mutex
	max     int64
	used    int64
	ll      *list.List // front = most recently used
	items   map[string]*list.Element
	nowFunc func() time.Time
}

type memItem struct {
	key  string
	e    *entry
	size int64
}

func newMemoryStore(max int64) *memoryStore {
	return &memoryStore{max: max, ll: list.New(), items: make(map[string]*list.Element), nowFunc: time.Now}
}

func (m *memoryStore) Get(_ context.Context, key string) *entry {
	m.mu.Lock()
	el, ok := m.items[key]
	if !ok {
		m.mu.Unlock()
		return nil
	}
	it := el.Value.(*memItem)
	if !it.e.Expires.IsZero() && m.nowFunc().After(it.e.Expires) {
		m.removeLocked(el)
		m.mu.Unlock()
		return nil
	}
	m.ll.MoveToFront(el)
	m.mu.Unlock()
	return it.e
}

func (m *memoryStore) Set(_ context.Context, key string, e *entry, guard func() bool) bool {
	sz := e.size() + int64(len(key))
	if sz > m.max {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Checked under mu: an invalidation stamps before it deletes (which
	// takes mu), so either the stamp is seen here or its delete follows.
	if guard != nil && !guard() {
		return false
	}
	if el, ok := m.items[key]; ok {
		m.removeLocked(el)
	}
	m.items[key] = m.ll.PushFront(&memItem{key: key, e: e, size: sz})
	m.used += sz
	for m.used > m.max {
		m.removeLocked(m.ll.Back())
	}
	return true
}

func (m *memoryStore) Healthy() bool { return true }

func (m *memoryStore) removeLocked(el *list.Element) {
	it := el.Value.(*memItem)
	m.ll.Remove(el)
	delete(m.items, it.key)
	m.used -= it.size
}

func (m *memoryStore) Delete(_ context.Context, key string) {
	m.mu.Lock()
	if el, ok := m.items[key]; ok {
		m.removeLocked(el)
	}
	m.mu.Unlock()
}

func (m *memoryStore) Purge(_ context.Context, prefix string, match func(string) bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, el := range m.items {
		if strings.HasPrefix(k, prefix) && match(k) {
			m.removeLocked(el)
			n++
		}
	}
	return n, nil
}

func (m *memoryStore) PurgeTag(_ context.Context, tag string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, el := range m.items {
		if slices.Contains(el.Value.(*memItem).e.Tags, tag) {
			m.removeLocked(el)
			n++
		}
	}
	return n, nil
}

func (m *memoryStore) Close(context.Context) error { return nil }

// stats returns the number of entries and bytes used (tests).
func (m *memoryStore) stats() (int, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items), m.used
}
