// Package auth holds portico's access-control gates (layer.Gate): basic
// auth against bcrypt hashes, allow/deny lists of client addresses, and
// forward auth (a subrequest to an auth server, net/http only).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/crypto/bcrypt"

	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/layer"
)

// Counters count what the gates refused, for the metrics. One set is
// shared by every gate of a server (it outlives reloads).
type Counters struct {
	BasicFailures atomic.Int64 // wrong, unknown or malformed credentials
	Denied        atomic.Int64 // allow/deny refusals
	ForwardDenied atomic.Int64 // non-2xx answers of an auth server
	ForwardErrors atomic.Int64 // auth server unreachable (503)
}

// Options are what the gates need from outside.
type Options struct {
	Logger   *slog.Logger
	Clients  *clientip.Resolver
	Counters *Counters
}

func (o *Options) fill() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Counters == nil {
		o.Counters = &Counters{}
	}
}

// Basic is the basic_auth gate. A credential is checked with bcrypt once
// and then remembered (credCache): bcrypt at cost 12 costs a core about
// a quarter of a second, which per request would be a denial of service
// waiting to happen.
type Basic struct {
	layer.NoHeaderEdits
	users      map[string][]byte // user -> bcrypt hash
	dummy      []byte            // compared against for unknown users (same timing), made on first use
	dummyOnce  sync.Once
	dummyCost  int
	forward    bool
	challenge  *layer.Answer
	malformed  *layer.Answer
	cache      *credCache
	secret     [32]byte      // keys the cache: a leaked key says nothing
	bcryptSem  chan struct{} // bounds concurrent bcrypt runs
	bcryptRuns atomic.Int64  // bcrypt comparisons made (the cache's misses)
	opts       Options
}

var (
	_ layer.Gate               = (*Basic)(nil)
	_ layer.CredentialConsumer = (*Basic)(nil)
)

// maxCredential bounds a decoded "user:password".
const maxCredential = 1024

// NewBasic builds the gate from its config section, reading the htpasswd
// file now (a reload reads it again).
func NewBasic(cfg config.BasicAuth, opts Options) (*Basic, error) {
	opts.fill()
	b := &Basic{users: map[string][]byte{}, forward: cfg.ForwardAuthorization, cache: newCredCache(defaultCacheSize), opts: opts,
		bcryptSem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))}
	if cfg.Htpasswd != "" {
		entries, err := config.ReadHtpasswd(cfg.Htpasswd)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			b.users[e.User] = []byte(e.Hash)
		}
	}
	for u, h := range cfg.Users {
		if err := config.CheckPasswordHash(u, h); err != nil {
			return nil, fmt.Errorf("basic_auth users: %w", err)
		}
		b.users[u] = []byte(h)
	}
	if len(b.users) == 0 {
		return nil, fmt.Errorf("basic_auth: no users")
	}
	b.dummyCost = bcrypt.MinCost // raised to the dearest hash below: unknown users cost the same
	for _, h := range b.users {
		if c, err := bcrypt.Cost(h); err == nil && c > b.dummyCost {
			b.dummyCost = c
		}
	}
	if _, err := rand.Read(b.secret[:]); err != nil {
		return nil, fmt.Errorf("basic_auth: %w", err)
	}
	realm := cfg.Realm
	if realm == "" {
		realm = config.DefaultRealm
	}
	hdr := [][2]string{{"Www-Authenticate", `Basic realm="` + realm + `", charset="UTF-8"`}}
	b.challenge = &layer.Answer{Status: 401, Header: hdr, Body: "Authentication required.\n"}
	b.malformed = &layer.Answer{Status: 401, Header: hdr, Body: "Malformed Authorization header: want Basic with base64 of user:password.\n"}
	return b, nil
}

// ConsumesAuthorization: the handler sees the credential only with
// forward_authorization.
func (b *Basic) ConsumesAuthorization() bool { return !b.forward }

// Check lets a request with a valid credential through and answers
// anything else with 401 and the challenge.
func (b *Basic) Check(r layer.GateRequest) *layer.Answer {
	auth := r.Header("Authorization")
	if auth == "" {
		return b.challenge
	}
	const prefix = "Basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return b.challenge // another scheme: ask for ours
	}
	enc := strings.TrimLeft(auth[len(prefix):], " ")
	var buf [maxCredential]byte
	if base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return b.fail(r, "", "malformed (too long)", b.malformed)
	}
	n, err := base64.StdEncoding.Decode(buf[:], unsafe.Slice(unsafe.StringData(enc), len(enc)))
	if err != nil {
		return b.fail(r, "", "malformed (not base64)", b.malformed)
	}
	cred := buf[:n]
	colon := -1
	for i, c := range cred {
		if c == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return b.fail(r, "", "malformed (no colon)", b.malformed)
	}
	key := b.key(cred)
	now := time.Now().UnixNano()
	if ok, found := b.cache.get(key, now); found {
		if ok {
			return nil
		}
		return b.fail(r, string(cred[:colon]), "wrong password or unknown user (remembered)", b.challenge)
	}
	ok := b.verify(cred[:colon], cred[colon+1:])
	ttl := cacheTTL
	if !ok {
		ttl = failTTL
	}
	b.cache.put(key, ok, now, ttl)
	if !ok {
		return b.fail(r, string(cred[:colon]), "wrong password or unknown user", b.challenge)
	}
	return nil
}

// key is the cache key of a credential: a keyed hash, so the cache never
// holds a password and its keys cannot be precomputed.
func (b *Basic) key(cred []byte) [32]byte {
	var in [32 + maxCredential]byte
	copy(in[:], b.secret[:])
	n := copy(in[32:], cred)
	return sha256.Sum256(in[:32+n])
}

// verify runs bcrypt, at most GOMAXPROCS at a time: a flood of wrong
// guesses queues here instead of starving every other request. An
// unknown user costs the same as a known one.
func (b *Basic) verify(user, pass []byte) bool {
	b.bcryptSem <- struct{}{}
	defer func() { <-b.bcryptSem }()
	b.bcryptRuns.Add(1)
	hash, known := b.users[string(user)]
	if !known {
		b.dummyOnce.Do(func() {
			b.dummy, _ = bcrypt.GenerateFromPassword([]byte("portico-no-such-user"), b.dummyCost)
		})
		hash = b.dummy
	}
	err := bcrypt.CompareHashAndPassword(hash, pass)
	return known && err == nil
}

// fail counts and logs a refused credential (fail2ban can read the
// line), and returns the answer.
func (b *Basic) fail(r layer.GateRequest, user, reason string, a *layer.Answer) *layer.Answer {
	b.opts.Counters.BasicFailures.Add(1)
	b.opts.Logger.Warn("basic auth failed", "client", clientString(r.Client(b.opts.Clients)), "user", user,
		"method", r.Method(), "path", r.Path(), "reason", reason)
	return a
}

func clientString(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
