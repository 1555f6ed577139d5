// Package ratelimit is the rate_limit gate (layer.Gate): GCRA, the
// generic cell rate algorithm, per client address, per header value or
// per route, kept in memory or in Redis so that several portico
// instances share one budget.
//
// GCRA is a token bucket that stores a single time per key, the
// theoretical arrival time (TAT) of the next request: with an emission
// interval T (the period divided by the rate) and a bucket of burst
// requests, a request at now is allowed when TAT-now <= T*(burst-1),
// and then TAT becomes max(TAT, now)+T. A key whose TAT is in the past
// is the same as no key at all, so old keys can be dropped at any time.
package ratelimit

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// Key is what a budget belongs to: a client address, or a name (a
// header value; "" for the route's one budget).
type Key struct {
	Addr netip.Addr
	Name string
}

// params are a limit's GCRA constants, in nanoseconds.
type params struct {
	interval int64 // T
	tau      int64 // T*(burst-1): how far ahead of now TAT may be
}

func newParams(n int, per time.Duration, burst int) params {
	t := int64(per) / int64(n)
	if t < 1 {
		t = 1
	}
	return params{interval: t, tau: t * int64(burst-1)}
}

// decide is GCRA's step for a key whose stored TAT is tat (0: none). It
// returns whether the request is allowed, the new TAT to store, and,
// when refused, the wait until a request would be allowed.
func (p params) decide(tat, now int64) (ok bool, newTAT int64, retry time.Duration) {
	if tat < now {
		tat = now
	}
	if tat-now > p.tau {
		return false, tat, time.Duration(tat - now - p.tau)
	}
	return true, tat + p.interval, 0
}

// memoryStore keeps TATs in this process, in shards (one mutex each) so
// concurrent requests for different keys rarely wait for each other.
type memoryStore struct {
	p      params
	seed   maphash.Seed
	shards [numShards]shard
	now    func() int64
}

const (
	numShards = 64
	// maxPerShard bounds the keys of one shard; past it, keys whose TAT
	// is in the past are dropped (they change nothing), then arbitrary
	// ones (whose clients get a fresh budget: a flood of addresses can
	// cost the limit some precision, never unbounded memory).
	maxPerShard = 16384
)

type shard struct {
	mu   sync.Mutex
	tats map[Key]int64
}

func newMemoryStore(p params) *memoryStore {
	s := &memoryStore{p: p, seed: maphash.MakeSeed(), now: func() int64 { return time.Now().UnixNano() }}
	for i := range s.shards {
		s.shards[i].tats = map[Key]int64{}
	}
	return s
}

func (s *memoryStore) shard(k Key) *shard {
	var h maphash.Hash
	h.SetSeed(s.seed)
	b := k.Addr.As16()
	h.Write(b[:])
	h.WriteString(k.Name)
	return &s.shards[h.Sum64()%numShards]
}

// take consumes one request of k's budget.
func (s *memoryStore) takeKey(k Key) (bool, time.Duration, error) {
	now := s.now()
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tat, found := sh.tats[k]
	ok, newTAT, retry := s.p.decide(tat, now)
	if !ok {
		return false, retry, nil
	}
	if found {
		sh.tats[k] = newTAT
		return true, 0, nil
	}
	if len(sh.tats) >= maxPerShard {
		sh.sweep(now)
	}
	k.Name = cloneString(k.Name) // the view's strings die with the request
	sh.tats[k] = newTAT
	return true, 0, nil
}

// refund gives back one request of k's budget.
func (s *memoryStore) refundKey(k Key) error {
	sh := s.shard(k)
	sh.mu.Lock()
	if tat, ok := sh.tats[k]; ok {
		sh.tats[k] = tat - s.p.interval
	}
	sh.mu.Unlock()
	return nil
}

func (sh *shard) sweep(now int64) {
	for k, tat := range sh.tats {
		if tat <= now {
			delete(sh.tats, k)
		}
	}
	for k := range sh.tats {
		if len(sh.tats) < maxPerShard*7/8 {
			break
		}
		delete(sh.tats, k)
	}
}

func (s *memoryStore) close() error { return nil }

func cloneString(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}
