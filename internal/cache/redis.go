package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis store tuning. A cache in front of an app must never be slower than
// the app without it, so every Redis call is short and a circuit breaker
// stops calling a Redis that keeps failing.
const (
	redisTimeout     = 150 * time.Millisecond // per command (dial, read, write)
	breakerThreshold = 3                      // consecutive failures that open the breaker
	breakerCooldown  = 2 * time.Second        // open time before one probe is let through
	redisLogEvery    = 30 * time.Second       // at most one "redis unavailable" line per this
	maxPendingSets   = 256                    // background writes in flight; more are dropped
)

// redisStore keeps encoded entries in Redis under ns+key with a TTL
// (freshness + stale windows + revalidation keep), so several portico
// processes share them.
type redisStore struct {
	client *redis.Client
	ns     string // "portico:" + name + ":"
	tagNS  string // "portico-tags:" + name + ":": sets of keys by tag, out of ns's SCANs
	log    *slog.Logger
	br     breaker
	sets   chan struct{} // semaphore of background writes
	mu     sync.Mutex    // guards closed and wg.Add against Close's Wait
	closed bool
	wg     sync.WaitGroup
}

// parseRedisURL checks a store URL ("redis://host:port/db").
func parseRedisURL(s string) (*redis.Options, error) {
	opt, err := redis.ParseURL(s)
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", s, err)
	}
	return opt, nil
}

// quietRedis silences go-redis's own logger (process-wide): it would print
// a line per failed dial; portico logs one rate-limited line instead.
var quietRedis sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

func newRedisStore(opt *redis.Options, name string, log *slog.Logger) *redisStore {
	quietRedis.Do(func() { redis.SetLogger(discardLogger{}) })
	opt.DialTimeout = redisTimeout
	opt.ReadTimeout = redisTimeout
	opt.WriteTimeout = redisTimeout
	opt.PoolTimeout = redisTimeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DialerRetryTimeout = 10 * time.Millisecond
	opt.Protocol = 2
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &redisStore{
		client: redis.NewClient(opt),
		ns:     "portico:" + name + ":",
		tagNS:  "portico-tags:" + name + ":",
		log:    log,
		br:     breaker{threshold: breakerThreshold, cooldown: breakerCooldown, logEvery: redisLogEvery},
		sets:   make(chan struct{}, maxPendingSets),
	}
}

// op runs one Redis call unless the breaker is open, and feeds the breaker.
// It reports whether the call was made and succeeded (redis.Nil counts as
// success).
func (s *redisStore) op(ctx context.Context, f func(ctx context.Context) error) error {
	if !s.br.allow() {
		return errBreakerOpen
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	err := f(ctx)
	if err == nil || errors.Is(err, redis.Nil) {
		s.br.success()
		return err
	}
	if s.br.failure() {
		s.log.Warn("cache: redis unavailable; requests go upstream uncached", "err", err)
	}
	return err
}

var errBreakerOpen = errors.New("cache: redis circuit open")

func (s *redisStore) Get(ctx context.Context, key string) *entry {
	var b []byte
	err := s.op(ctx, func(ctx context.Context) error {
		var err error
		b, err = s.client.Get(ctx, s.ns+key).Bytes()
		return err
	})
	if err != nil {
		return nil
	}
	e, err := decodeEntry(b)
	if err != nil {
		return nil
	}
	return e
}

func (s *redisStore) Set(ctx context.Context, key string, e *entry, guard func() bool) bool {
	ttl := time.Until(e.Expires)
	if ttl < time.Second || !s.br.healthy() {
		return false
	}
	select {
	case s.sets <- struct{}{}:
	default:
		return false // too many writes pending: drop this one
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.sets
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	b := e.encode()
	go func() {
		defer func() { <-s.sets; s.wg.Done() }()
		if guard != nil && !guard() {
			return
		}
		err := s.op(ctx, func(ctx context.Context) error {
			if len(e.Tags) == 0 {
				return s.client.Set(ctx, s.ns+key, b, ttl).Err()
			}
			_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.ns+key, b, ttl)
				for _, t := range e.Tags {
					// The set lives as long as its longest-lived entry:
					// NX gives a new set a TTL, GT extends it.
					p.SAdd(ctx, s.tagNS+t, key)
					p.ExpireNX(ctx, s.tagNS+t, ttl)
					p.ExpireGT(ctx, s.tagNS+t, ttl)
				}
				return nil
			})
			return err
		})
		// An invalidation stamped while the SET was on its way may have
		// deleted the key before the SET landed: delete it again.
		if err == nil && guard != nil && !guard() {
			s.Delete(ctx, key)
		}
	}()
	return true
}

// Healthy reports whether the last Redis call succeeded.
func (s *redisStore) Healthy() bool { return s.br.healthy() }

func (s *redisStore) Delete(ctx context.Context, key string) {
	_ = s.op(ctx, func(ctx context.Context) error {
		return s.client.Del(ctx, s.ns+key).Err()
	})
}

// Purge SCANs the keys under prefix (a glob on the escaped prefix) and
// deletes those match accepts. Unlike Get it reports errors: the admin asked.
func (s *redisStore) Purge(ctx context.Context, prefix string, match func(string) bool) (int, error) {
	pattern := globEscape(s.ns+prefix) + "*"
	n := 0
	var cursor uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys, next, err := s.client.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return n, fmt.Errorf("cache purge: redis scan: %w", err)
		}
		var del []string
		for _, k := range keys {
			if match(strings.TrimPrefix(k, s.ns)) {
				del = append(del, k)
			}
		}
		if len(del) > 0 {
			d, err := s.client.Del(ctx, del...).Result()
			if err != nil {
				return n, fmt.Errorf("cache purge: redis del: %w", err)
			}
			n += int(d)
		}
		cursor = next
		if cursor == 0 {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, errors.New("cache purge: redis scan took too long")
		}
	}
}

// PurgeTag deletes the keys in tag's set, and the set. Every process
// sharing the store sees the purge: the set is in Redis.
func (s *redisStore) PurgeTag(ctx context.Context, tag string) (int, error) {
	set := s.tagNS + tag
	keys, err := s.client.SMembers(ctx, set).Result()
	if err != nil {
		return 0, fmt.Errorf("cache purge: redis smembers: %w", err)
	}
	n := 0
	for chunk := range slices.Chunk(keys, 1000) {
		del := make([]string, len(chunk))
		for i, k := range chunk {
			del[i] = s.ns + k
		}
		d, err := s.client.Del(ctx, del...).Result()
		if err != nil {
			return n, fmt.Errorf("cache purge: redis del: %w", err)
		}
		n += int(d)
	}
	if err := s.client.Del(ctx, set).Err(); err != nil {
		return n, fmt.Errorf("cache purge: redis del: %w", err)
	}
	return n, nil
}

func (s *redisStore) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return s.client.Close()
}

// globEscape escapes Redis glob metacharacters.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// breaker is a small circuit breaker: after threshold consecutive failures
// it stays open for cooldown, then lets one probe call through; a success
// closes it, a failure keeps it open for another cooldown.
type breaker struct {
	threshold int
	cooldown  time.Duration
	logEvery  time.Duration

	mu        sync.Mutex
	fails     int
	openUntil time.Time
	lastLog   time.Time
}

func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fails < b.threshold {
		return true
	}
	now := time.Now()
	if now.Before(b.openUntil) {
		return false
	}
	b.openUntil = now.Add(b.cooldown) // half-open: this call is the one probe
	return true
}

// healthy reports whether the last call succeeded (no failure since).
func (b *breaker) healthy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fails == 0
}

func (b *breaker) success() {
	b.mu.Lock()
	b.fails = 0
	b.mu.Unlock()
}

// failure records a failure and reports whether to log it (rate-limited).
func (b *breaker) failure() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	now := time.Now()
	if b.fails >= b.threshold {
		b.openUntil = now.Add(b.cooldown)
	}
	if now.Sub(b.lastLog) >= b.logEvery {
		b.lastLog = now
		return true
	}
	return false
}
