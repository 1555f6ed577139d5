package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/layer"
)

// Counters count what the limits did, for the metrics. One set is shared
// by every limit of a server (it outlives reloads).
type Counters struct {
	Limited     atomic.Int64 // requests answered 429
	StoreErrors atomic.Int64 // Redis calls that failed (the request passed)
}

// Options are what a limit needs from outside.
type Options struct {
	Logger   *slog.Logger
	Clients  *clientip.Resolver
	Counters *Counters
	// Scope names the limit in a shared store ("site route"): instances
	// with the same config share budgets, different limits do not.
	Scope string
}

// store is where TATs live.
type store interface {
	takeKey(Key) (ok bool, retry time.Duration, err error)
	refundKey(Key) error
	close() error
}

// Limit is the rate_limit gate.
type Limit struct {
	layer.NoHeaderEdits
	store  store
	byAddr bool
	header string // canonical field name, for key = "header:NAME"
	opts   Options
}

var (
	_ layer.Gate     = (*Limit)(nil)
	_ layer.Refunder = (*Limit)(nil)
)

// New builds the gate from its config section (validated by config).
func New(cfg config.RateLimit, opts Options) (*Limit, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Counters == nil {
		opts.Counters = &Counters{}
	}
	n, per, err := config.ParseRate(cfg.Rate)
	if err != nil {
		return nil, err
	}
	burst := cfg.Burst
	if burst < 1 {
		burst = max(1, n)
	}
	p := newParams(n, per, burst)
	l := &Limit{opts: opts}
	switch {
	case cfg.Key == "" || cfg.Key == "ip":
		l.byAddr = true
	case cfg.Key == "route":
	case strings.HasPrefix(cfg.Key, "header:"):
		l.header = http.CanonicalHeaderKey(strings.TrimPrefix(cfg.Key, "header:"))
	default:
		return nil, fmt.Errorf("rate_limit key %q", cfg.Key)
	}
	if cfg.Store == "" || cfg.Store == "memory" {
		l.store = newMemoryStore(p)
		return l, nil
	}
	// The prefix names the limit and its parameters: a changed rate
	// starts fresh budgets instead of misreading old TATs.
	prefix := fmt.Sprintf("portico:rl:%s:%s:%d:%d:", opts.Scope, cfg.Key, p.interval, burst)
	rs, err := newRedisStore(cfg.Store, prefix, p, opts.Logger)
	if err != nil {
		return nil, err
	}
	l.store = rs
	return l, nil
}

// Close releases the store's connections.
func (l *Limit) Close() error { return l.store.close() }

func (l *Limit) key(r layer.GateRequest) Key {
	switch {
	case l.byAddr:
		return Key{Addr: r.Client(l.opts.Clients)}
	case l.header != "":
		v := r.Header(l.header)
		if len(v) > maxKeyLen {
			// A long value is kept as its hash: a 100 KB header must not
			// become a 100 KB key.
			sum := sha256.Sum256([]byte(v))
			v = "sha256:" + hex.EncodeToString(sum[:])
		}
		return Key{Name: v}
	}
	return Key{}
}

// maxKeyLen bounds a header value used as a key as it is.
const maxKeyLen = 128

// Check counts the request against its key's budget: 429 with
// Retry-After beyond it. A store that fails lets the request pass.
func (l *Limit) Check(r layer.GateRequest) *layer.Answer {
	ok, retry, err := l.store.takeKey(l.key(r))
	if err != nil {
		l.opts.Counters.StoreErrors.Add(1)
		return nil
	}
	if ok {
		return nil
	}
	l.opts.Counters.Limited.Add(1)
	secs := int64((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &layer.Answer{Status: http.StatusTooManyRequests,
		Header: [][2]string{{"Retry-After", strconv.FormatInt(secs, 10)}},
		Body:   "Too many requests: slow down and retry later.\n"}
}

// Refund gives back the request of r: the fast path let it through, then
// handed it to net/http, which counts it again.
func (l *Limit) Refund(r layer.GateRequest) {
	if err := l.store.refundKey(l.key(r)); err != nil {
		l.opts.Counters.StoreErrors.Add(1)
	}
}
