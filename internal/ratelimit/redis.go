package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// takeScript is GCRA in Redis: the same step as params.decide, atomic
// per key, on Redis's clock (TIME), so the instances sharing a budget
// need not agree on the time. KEYS[1] the key; ARGV[1] T and ARGV[2] tau
// in microseconds. Returns {1, 0} or {0, retry in microseconds}.
// Writing after TIME needs Redis 5 or later (effects replication, the
// default since 5 and the only mode since 7).
const takeScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tau then return {0, tat - now - tau} end
local new = tat + interval
redis.call('SET', KEYS[1], new, 'PX', math.ceil((new - now) / 1000) + 1)
return {1, 0}
`

// refundScript gives one interval back (a request the fast path let
// through and then handed to net/http, which counts it again).
const refundScript = `
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], tat - tonumber(ARGV[1]), 'PX', ttl)
return 1
`

// Redis call tuning: a rate limit must not make a request slow, so calls
// are short, and after a failure Redis is left alone for a moment
// (requests pass meanwhile: fail open).
const (
	redisTimeout  = 200 * time.Millisecond
	redisCooldown = time.Second
	redisLogEvery = 10 * time.Second
)

// redisStore keeps TATs in Redis under prefix+key.
type redisStore struct {
	client       *redis.Client
	take, refund *redis.Script
	prefix       string
	intervalUS   string
	tauUS        string
	interval     int64

	downUntil atomic.Int64 // unix nanoseconds: skip Redis until then
	lastLog   atomic.Int64
	log       *slog.Logger
}

var quietRedis sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// errStoreDown is take's error while Redis is being left alone.
var errStoreDown = errors.New("rate limit store unavailable")

func newRedisStore(url, prefix string, p params, log *slog.Logger) (*redisStore, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("rate_limit store %q: %w", url, err)
	}
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
	us := func(ns int64) string { return strconv.FormatInt(max(1, ns/1000), 10) }
	return &redisStore{
		client:     redis.NewClient(opt),
		take:       redis.NewScript(takeScript),
		refund:     redis.NewScript(refundScript),
		prefix:     prefix,
		intervalUS: us(p.interval),
		tauUS:      strconv.FormatInt(p.tau/1000, 10),
		interval:   p.interval,
		log:        log,
	}, nil
}

func (s *redisStore) key(k Key) string {
	if k.Addr.IsValid() {
		return s.prefix + k.Addr.String()
	}
	return s.prefix + k.Name
}

func (s *redisStore) takeKey(k Key) (bool, time.Duration, error) {
	if time.Now().UnixNano() < s.downUntil.Load() {
		return true, 0, errStoreDown
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	res, err := s.take.Run(ctx, s.client, []string{s.key(k)}, s.intervalUS, s.tauUS).Int64Slice()
	if err != nil || len(res) != 2 {
		if err == nil {
			err = fmt.Errorf("unexpected reply %v", res)
		}
		s.failed(err)
		return true, 0, err
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}

func (s *redisStore) refundKey(k Key) error {
	if time.Now().UnixNano() < s.downUntil.Load() {
		return errStoreDown
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	err := s.refund.Run(ctx, s.client, []string{s.key(k)}, s.intervalUS).Err()
	if err != nil {
		s.failed(err)
	}
	return err
}

// failed leaves Redis alone for a moment and logs, at most every
// redisLogEvery.
func (s *redisStore) failed(err error) {
	now := time.Now().UnixNano()
	s.downUntil.Store(now + int64(redisCooldown))
	if last := s.lastLog.Load(); now-last >= int64(redisLogEvery) && s.lastLog.CompareAndSwap(last, now) {
		s.log.Warn("rate limit: redis unavailable; requests pass unlimited (fail open)", "err", err)
	}
}

func (s *redisStore) close() error { return s.client.Close() }
