package tlsauto

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// redisStorage keeps certmagic's accounts, certificates and locks in
// Redis, so several portico instances share one certificate per name and
// one order with the CA: whoever takes a name's lock orders it, the
// others wait on the lock and then load what it stored.
//
// Keys are "<prefix>:k:<key>" (values, with a modification time beside
// them in a hash) and "<prefix>:lock:<name>". A lock is a SET NX with an
// expiry that its holder refreshes; an instance that dies holding it
// blocks the others for at most lockTTL.
type redisStorage struct {
	c      *redis.Client
	prefix string
	owner  string // random per process: only the holder unlocks

	locks map[string]context.CancelFunc // refreshers of locks held
	mu    chan struct{}                 // guards locks (a 1-slot semaphore)

	ttl, refresh, poll time.Duration // lockTTL, lockRefresh, lockPollEvery
}

const (
	lockTTL       = 60 * time.Second
	lockRefresh   = 20 * time.Second
	lockPollEvery = 500 * time.Millisecond
)

func newRedisStorage(url string) (*redisStorage, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("acme storage %s: %w", url, err)
	}
	var b [8]byte
	rand.Read(b[:])
	return &redisStorage{
		c: redis.NewClient(opt), prefix: "portico:acme", owner: hex.EncodeToString(b[:]),
		locks: map[string]context.CancelFunc{}, mu: make(chan struct{}, 1),
		ttl: lockTTL, refresh: lockRefresh, poll: lockPollEvery,
	}, nil
}

var _ certmagic.Storage = (*redisStorage)(nil)

func (s *redisStorage) key(k string) string { return s.prefix + ":k:" + k }

// Store writes value and its modification time in one transaction.
func (s *redisStorage) Store(ctx context.Context, key string, value []byte) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.key(key), "v", value, "t", time.Now().UnixNano())
		p.SAdd(ctx, s.prefix+":keys", key)
		return nil
	})
	return err
}

func (s *redisStorage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.c.HGet(ctx, s.key(key), "v").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fs.ErrNotExist
	}
	return v, err
}

// Delete removes key, or every key under it when it is a "directory".
func (s *redisStorage) Delete(ctx context.Context, key string) error {
	keys, err := s.List(ctx, key, true)
	if err != nil {
		return err
	}
	keys = append(keys, key)
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, s.key(k))
			p.SRem(ctx, s.prefix+":keys", k)
		}
		return nil
	})
	return err
}

func (s *redisStorage) Exists(ctx context.Context, key string) bool {
	if n, err := s.c.Exists(ctx, s.key(key)).Result(); err == nil && n > 0 {
		return true
	}
	keys, _ := s.List(ctx, key, false)
	return len(keys) > 0
}

// List returns the keys under path (one level, or all with recursive).
// The key set is small (a few keys per certificate), so a set scan is fine.
func (s *redisStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	all, err := s.c.SMembers(ctx, s.prefix+":keys").Result()
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(path, "/") + "/"
	seen := map[string]bool{}
	var out []string
	for _, k := range all {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if !recursive {
			first, _, _ := strings.Cut(rest, "/")
			k = prefix + first
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *redisStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	vals, err := s.c.HMGet(ctx, s.key(key), "t", "v").Result()
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if vals[1] == nil {
		if s.Exists(ctx, key) {
			return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
		}
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	var nanos int64
	if t, ok := vals[0].(string); ok {
		fmt.Sscan(t, &nanos)
	}
	v, _ := vals[1].(string)
	return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, nanos), Size: int64(len(v)), IsTerminal: true}, nil
}

// Lock waits until it holds name's lock (or ctx ends). The lock expires
// after lockTTL unless refreshed, which this process does while it holds
// it, so a crashed holder frees it by itself.
func (s *redisStorage) Lock(ctx context.Context, name string) error {
	lk := s.prefix + ":lock:" + name
	for {
		ok, err := s.c.SetNX(ctx, lk, s.owner, s.ttl).Result()
		if err != nil {
			return fmt.Errorf("acme lock %s: %w", name, err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.poll):
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.mu <- struct{}{}
	s.locks[name] = cancel
	<-s.mu
	go func() {
		t := time.NewTicker(s.refresh)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				s.c.Expire(rctx, lk, s.ttl)
			}
		}
	}()
	return nil
}

// unlockScript deletes the lock only if this process still holds it.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (s *redisStorage) Unlock(ctx context.Context, name string) error {
	s.mu <- struct{}{}
	if cancel := s.locks[name]; cancel != nil {
		cancel()
		delete(s.locks, name)
	}
	<-s.mu
	return unlockScript.Run(ctx, s.c, []string{s.prefix + ":lock:" + name}, s.owner).Err()
}

func (s *redisStorage) close() error {
	s.mu <- struct{}{}
	for name, cancel := range s.locks {
		cancel()
		delete(s.locks, name)
	}
	<-s.mu
	return s.c.Close()
}

// String names the storage in certmagic's logs.
func (s *redisStorage) String() string { return "redis:" + s.c.Options().Addr }
