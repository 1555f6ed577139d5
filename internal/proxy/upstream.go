package proxy

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"portico/internal/config"
)

// maxUpstreams bounds the upstreams of one route, so that the set of
// upstreams a request has already tried fits in one machine word.
const maxUpstreams = 64

// upstream is one server of the pool and its health state.
//
// Selection reads only atomics; the mutex guards the passive-failure window.
type upstream struct {
	idx    int
	addr   string // as shown in logs: "127.0.0.1:8081" or "unix:/run/app.sock"
	scheme string // "http" or "https"
	host   string // URL host the transport dials (synthetic for unix sockets)
	// hostHeader is the Host sent in "upstream" host mode.
	hostHeader string
	unixPath   string
	weight     int64

	active atomic.Int64  // requests in flight (least_conn, random)
	stats  upstreamStats // stats.go

	// downUntil is the unix-nano time until which passive checks keep the
	// upstream out of rotation (0: not down).
	downUntil atomic.Int64
	// activeDown is set while active health checks fail.
	activeDown atomic.Bool

	mu        sync.Mutex
	fails     int       // failures in the current window
	failStart time.Time // start of the current failure window
	wasDown   bool      // passively marked down; "upstream up" not logged yet
	// dirty is set while fails > 0 or wasDown, so that ok can skip the lock.
	dirty atomic.Bool

	// cur is the smooth weighted round-robin current weight (guarded by
	// the pool's rrMu).
	cur int64
}

// available reports whether the upstream is in rotation at time now.
func (u *upstream) available(now int64) bool {
	return !u.activeDown.Load() && u.downUntil.Load() <= now
}

// parseUpstream builds upstream i of a route from its config string.
// config.ParseUpstream is the one parser (Load validates with it too);
// this adds the field name to its errors and the transport's addressing.
func parseUpstream(i int, s string) (*upstream, error) {
	cu, err := config.ParseUpstream(s)
	if err != nil {
		return nil, fmt.Errorf("proxy.upstreams[%d]: %w", i, err)
	}
	u := &upstream{idx: i, weight: int64(cu.Weight), scheme: cu.Scheme}
	if cu.Socket != "" {
		u.unixPath = cu.Socket
		u.addr = "unix:" + cu.Socket
		// A name that never resolves: the transport's DialContext maps it
		// back to the socket, and it keys a connection pool of its own.
		u.host = "unix-" + strconv.Itoa(i) + ".portico.invalid:80"
		u.hostHeader = "localhost"
		return u, nil
	}
	u.host = cu.Host
	u.hostHeader = cu.Host
	u.addr = cu.Host
	return u, nil
}

// pool is the upstreams of one handler and their passive-check policy.
type pool struct {
	ups         []*upstream
	maxFails    int
	failTimeout time.Duration
	log         *slog.Logger
}

// fail records a failed attempt (passive check). After maxFails failures
// within failTimeout the upstream leaves the rotation for failTimeout.
func (p *pool) fail(u *upstream, err error) {
	now := time.Now()
	u.mu.Lock()
	if now.Sub(u.failStart) > p.failTimeout {
		u.fails = 0
		u.failStart = now
	}
	u.fails++
	u.dirty.Store(true)
	down := u.fails >= p.maxFails && u.downUntil.Load() <= now.UnixNano()
	if down {
		u.downUntil.Store(now.Add(p.failTimeout).UnixNano())
		u.wasDown = true
	}
	fails := u.fails
	u.mu.Unlock()
	if down {
		p.log.Warn("upstream down", "upstream", u.addr,
			"reason", fmt.Sprintf("%d failed attempt(s) within fail_timeout %s: %v", fails, p.failTimeout, err),
			"for", p.failTimeout)
	}
}

// ok records a successful attempt. It is called on every response, so the
// common case (nothing to reset) takes no lock.
func (p *pool) ok(u *upstream) {
	if !u.dirty.Load() {
		return
	}
	u.mu.Lock()
	u.dirty.Store(false)
	u.fails = 0
	was := u.wasDown
	u.wasDown = false
	u.downUntil.Store(0)
	u.mu.Unlock()
	if was {
		p.log.Info("upstream up", "upstream", u.addr, "reason", "request succeeded")
	}
}
