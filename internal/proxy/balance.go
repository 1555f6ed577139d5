package proxy

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
)

// Balancing policies.
const (
	balanceRoundRobin = iota
	balanceLeastConn
	balanceIPHash
	balanceRandom
)

func parseBalance(s string) (int, bool) {
	switch s {
	case "", "round_robin":
		return balanceRoundRobin, true
	case "least_conn":
		return balanceLeastConn, true
	case "ip_hash":
		return balanceIPHash, true
	case "random":
		return balanceRandom, true
	}
	return 0, false
}

// balancer picks an upstream among those in rotation.
type balancer struct {
	policy   int
	ups      []*upstream
	weighted bool // some weight differs from the others

	rr   atomic.Uint64 // unweighted round robin and tie breaking
	rrMu sync.Mutex    // smooth weighted round robin state
}

// pick returns an upstream that is in rotation and not in tried, or nil.
// ignorePassive lets upstreams that passive checks marked down be picked
// again (nginx tries them all when every one is marked down).
func (b *balancer) pick(now int64, tried uint64, clientAddr string, ignorePassive bool) *upstream {
	ok := func(u *upstream) bool {
		if tried&(1<<uint(u.idx)) != 0 || u.activeDown.Load() {
			return false
		}
		return ignorePassive || u.downUntil.Load() <= now
	}
	switch b.policy {
	case balanceLeastConn:
		return b.leastConn(ok)
	case balanceIPHash:
		return b.ipHash(ok, clientAddr)
	case balanceRandom:
		return b.random(ok)
	}
	if b.weighted {
		return b.smoothWeighted(ok)
	}
	n := uint64(len(b.ups))
	start := b.rr.Add(1) - 1
	for i := range n {
		if u := b.ups[(start+i)%n]; ok(u) {
			return u
		}
	}
	return nil
}

// smoothWeighted is nginx's smooth weighted round robin: weights 5,1,1 give
// a a b a c a a, not a a a a a b c.
func (b *balancer) smoothWeighted(ok func(*upstream) bool) *upstream {
	b.rrMu.Lock()
	defer b.rrMu.Unlock()
	var best *upstream
	var total int64
	for _, u := range b.ups {
		if !ok(u) {
			continue
		}
		u.cur += u.weight
		total += u.weight
		if best == nil || u.cur > best.cur {
			best = u
		}
	}
	if best != nil {
		best.cur -= total
	}
	return best
}

// less reports whether a is less loaded than b, relative to their weights.
func less(a, b *upstream) bool {
	return a.active.Load()*b.weight < b.active.Load()*a.weight
}

// leastConn picks the upstream with the fewest requests in flight per unit
// of weight; ties go round robin.
func (b *balancer) leastConn(ok func(*upstream) bool) *upstream {
	n := uint64(len(b.ups))
	start := b.rr.Add(1) - 1
	var best *upstream
	for i := range n {
		u := b.ups[(start+i)%n]
		if ok(u) && (best == nil || less(u, best)) {
			best = u
		}
	}
	return best
}

// random makes two weighted random choices and keeps the less loaded
// ("the power of two choices").
func (b *balancer) random(ok func(*upstream) bool) *upstream {
	var total int64
	for _, u := range b.ups {
		if ok(u) {
			total += u.weight
		}
	}
	if total == 0 {
		return nil
	}
	choose := func() *upstream {
		r := rand.Int64N(total)
		for _, u := range b.ups {
			if !ok(u) {
				continue
			}
			if r < u.weight {
				return u
			}
			r -= u.weight
		}
		return nil // unreachable unless health changed under us
	}
	a, c := choose(), choose()
	switch {
	case a == nil:
		return c
	case c == nil || a == c:
		return a
	case less(c, a):
		return c
	}
	return a
}

// ipHash maps the client address to an upstream with weighted rendezvous
// hashing: a client sticks to its upstream, and when an upstream leaves the
// rotation only its own clients move.
func (b *balancer) ipHash(ok func(*upstream) bool, clientAddr string) *upstream {
	ip := clientIP(clientAddr)
	var best *upstream
	var bestScore float64
	for _, u := range b.ups {
		if !ok(u) {
			continue
		}
		h := mix(fnv64(ip) ^ (uint64(u.idx+1) * 0x9e3779b97f4a7c15))
		var score float64
		if b.weighted {
			// -w / ln(x) with x uniform in (0,1).
			x := (float64(h>>11) + 0.5) / (1 << 53)
			score = -float64(u.weight) / math.Log(x)
		} else {
			score = float64(h >> 11)
		}
		if best == nil || score > bestScore {
			best, bestScore = u, score
		}
	}
	return best
}

// clientIP returns the host part of a RemoteAddr ("1.2.3.4:5678",
// "[::1]:5678"); anything else is returned whole.
func clientIP(remoteAddr string) string {
	i := strings.LastIndexByte(remoteAddr, ':')
	if i < 0 {
		return remoteAddr
	}
	host := remoteAddr[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
