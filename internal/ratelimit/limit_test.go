package ratelimit

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/layer"
)

type view struct {
	remote string
	header http.Header
}

func (v view) Method() string            { return "GET" }
func (v view) Path() string              { return "/" }
func (v view) Host() string              { return "example.test" }
func (v view) RequestID() string         { return "" }
func (v view) Scheme() string            { return "http" }
func (v view) Header(name string) string { return v.header.Get(name) }
func (v view) RemoteAddr() string        { return v.remote }
func (v view) Client(res *clientip.Resolver) netip.Addr {
	a, _ := res.Client(v.remote, v.header["X-Forwarded-For"])
	return a
}

func TestDecide(t *testing.T) {
	p := newParams(1, time.Second, 3) // 1/s, bucket of 3
	var tat int64
	now := int64(1e12)
	for i := 0; i < 3; i++ {
		ok, n, _ := p.decide(tat, now)
		if !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
		tat = n
	}
	ok, _, retry := p.decide(tat, now)
	if ok || retry != time.Second {
		t.Errorf("4th request: ok=%v retry=%v, want refused, retry 1s", ok, retry)
	}
	// Half a second later: still refused; a second later: one more.
	if ok, _, retry := p.decide(tat, now+int64(500*time.Millisecond)); ok || retry != 500*time.Millisecond {
		t.Errorf("after 0.5s: ok=%v retry=%v", ok, retry)
	}
	if ok, _, _ := p.decide(tat, now+int64(time.Second)); !ok {
		t.Error("after 1s: refused, want one more allowed")
	}
	// A TAT in the past is a fresh key.
	if ok, n, _ := p.decide(now-100, now); !ok || n != now+int64(time.Second) {
		t.Errorf("stale TAT: ok=%v new=%d", ok, n-now)
	}
}

func newLimit(t testing.TB, cfg config.RateLimit, opts Options) *Limit {
	t.Helper()
	l, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestMemoryLimitCountsExactly(t *testing.T) {
	c := &Counters{}
	l := newLimit(t, config.RateLimit{Rate: "1/m", Burst: 50, Key: "ip", Store: "memory"}, Options{Counters: c})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if l.Check(view{"192.0.2.1:1", nil}) == nil {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 50 {
		t.Errorf("allowed %d of 1000, want exactly the burst, 50", got)
	}
	if got := c.Limited.Load(); got != 950 {
		t.Errorf("counted %d limited, want 950", got)
	}
	a := l.Check(view{"192.0.2.1:1", nil})
	if a == nil || a.Status != 429 || len(a.Header) != 1 || a.Header[0][0] != "Retry-After" {
		t.Fatalf("answer %+v, want 429 with Retry-After", a)
	}
	if secs := a.Header[0][1]; secs != "60" && secs != "59" {
		// 1/m with the bucket empty: the next request is a minute away.
		t.Errorf("Retry-After %s, want 60", secs)
	}
	// Another address has its own budget.
	if l.Check(view{"192.0.2.2:1", nil}) != nil {
		t.Error("another address was limited")
	}
}

func TestKeys(t *testing.T) {
	byHeader := newLimit(t, config.RateLimit{Rate: "1/h", Burst: 1, Key: "header:X-Api-Key"}, Options{})
	if byHeader.Check(view{"192.0.2.1:1", http.Header{"X-Api-Key": {"a"}}}) != nil {
		t.Error("first request of key a limited")
	}
	if byHeader.Check(view{"192.0.2.9:1", http.Header{"X-Api-Key": {"a"}}}) == nil {
		t.Error("key a from another address passed: the key is the header")
	}
	if byHeader.Check(view{"192.0.2.1:1", http.Header{"X-Api-Key": {"b"}}}) != nil {
		t.Error("key b limited")
	}
	long := strings.Repeat("k", 100_000)
	if byHeader.Check(view{"192.0.2.1:1", http.Header{"X-Api-Key": {long}}}) != nil {
		t.Error("a 100 KB key: first request limited")
	}
	if byHeader.Check(view{"192.0.2.1:1", http.Header{"X-Api-Key": {long}}}) == nil {
		t.Error("a 100 KB key: second request passed")
	}
	route := newLimit(t, config.RateLimit{Rate: "1/h", Burst: 2, Key: "route"}, Options{})
	route.Check(view{"192.0.2.1:1", nil})
	route.Check(view{"192.0.2.2:1", nil})
	if route.Check(view{"192.0.2.3:1", nil}) == nil {
		t.Error("route key: a third address passed a budget of 2")
	}
	trusted := clientip.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	byIP := newLimit(t, config.RateLimit{Rate: "1/h", Burst: 1, Key: "ip"}, Options{Clients: trusted})
	byIP.Check(view{"10.0.0.1:1", http.Header{"X-Forwarded-For": {"192.0.2.1"}}})
	if byIP.Check(view{"10.0.0.1:1", http.Header{"X-Forwarded-For": {"192.0.2.2"}}}) != nil {
		t.Error("behind a trusted proxy, two clients share a budget")
	}
	if byIP.Check(view{"10.0.0.2:1", http.Header{"X-Forwarded-For": {"192.0.2.1"}}}) == nil {
		t.Error("behind a trusted proxy, a client's budget did not follow it")
	}
}

func TestRefund(t *testing.T) {
	l := newLimit(t, config.RateLimit{Rate: "1/h", Burst: 1}, Options{})
	v := view{"192.0.2.1:1", nil}
	l.Check(v)
	l.Refund(v)
	if l.Check(v) != nil {
		t.Error("after a refund the budget is still spent")
	}
}

func TestMemoryAllowedPathDoesNotAllocate(t *testing.T) {
	l := newLimit(t, config.RateLimit{Rate: "1000000/s", Burst: 1000000}, Options{})
	var v layer.GateRequest = view{"192.0.2.1:1", nil}
	l.Check(v)
	if n := testing.AllocsPerRun(500, func() { l.Check(v) }); n != 0 {
		t.Errorf("an allowed request costs %v allocations", n)
	}
}

func TestMemoryStoreIsBounded(t *testing.T) {
	s := newMemoryStore(newParams(1, time.Hour, 1))
	for i := 0; i < numShards*maxPerShard*2; i += 7 {
		s.takeKey(Key{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Name: fmt.Sprint(i)})
	}
	total := 0
	for i := range s.shards {
		total += len(s.shards[i].tats)
	}
	if total > numShards*maxPerShard {
		t.Errorf("%d keys held, bound %d", total, numShards*maxPerShard)
	}
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testing.Short() {
			t.Skip("redis-server not installed")
		}
		t.Fatal("redis-server not installed (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return addr
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("redis-server did not answer")
	return ""
}

// TestRedisSharedBudget: two limits (as two portico instances would
// build them) on one Redis share one budget exactly.
func TestRedisSharedBudget(t *testing.T) {
	addr := startRedis(t)
	cfg := config.RateLimit{Rate: "1/m", Burst: 25, Key: "ip", Store: "redis://" + addr + "/0"}
	a := newLimit(t, cfg, Options{Scope: "s /"})
	b := newLimit(t, cfg, Options{Scope: "s /"})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		l := a
		if g%2 == 1 {
			l = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if l.Check(view{"192.0.2.1:1", nil}) == nil {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 25 {
		t.Errorf("allowed %d of 400 across two limits, want exactly 25", got)
	}
	// A refund through one limit is seen by the other.
	a.Refund(view{"192.0.2.1:1", nil})
	if b.Check(view{"192.0.2.1:1", nil}) != nil {
		t.Error("a refund on one instance did not free a request on the other")
	}
}

// TestRedisDownFailsOpen: with Redis gone, requests pass, each counted
// as a store error, with a log line (not one per request).
func TestRedisDownFailsOpen(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	var log bytes.Buffer
	var mu sync.Mutex
	c := &Counters{}
	l := newLimit(t, config.RateLimit{Rate: "1/h", Burst: 1, Store: "redis://" + addr + "/0"},
		Options{Counters: c, Logger: slog.New(slog.NewTextHandler(&lockedWriter{&mu, &log}, nil))})
	for i := 0; i < 20; i++ {
		if a := l.Check(view{"192.0.2.1:1", nil}); a != nil {
			t.Fatalf("request %d: %d with Redis down, want it to pass", i, a.Status)
		}
	}
	if c.StoreErrors.Load() != 20 {
		t.Errorf("store errors %d, want 20", c.StoreErrors.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(log.String(), "redis unavailable"); n != 1 {
		t.Errorf("%d log lines, want 1:\n%s", n, log.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
