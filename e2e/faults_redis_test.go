package e2e

import (
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Fault: the Redis behind a cache route is killed (SIGKILL) under load and
// later restarted on the same port. No client may see an error: while it
// is down every request goes upstream (a miss), and once it is back the
// cache stores and hits again.
func TestFaultRedisKilledUnderLoad(t *testing.T) {
	testRedisFault(t, "redis-kill",
		func(t *testing.T, addr string, redis *exec.Cmd) {
			redis.Process.Signal(syscall.SIGKILL)
			redis.Wait()
		},
		func(t *testing.T, addr string, redis *exec.Cmd) { startRedisOn(t, addr) }) // empty: --save ""
}

// Fault: the Redis hangs (SIGSTOP) under load: it still accepts
// connections but never answers, the worse case for a client, which waits
// for its timeouts. Still no client error, and latency stays low (150ms
// per Redis call at most, and the circuit breaker stops calling it); once
// it runs again (SIGCONT) the cache hits again.
func TestFaultRedisFrozenUnderLoad(t *testing.T) {
	testRedisFault(t, "redis-freeze",
		func(t *testing.T, addr string, redis *exec.Cmd) { redis.Process.Signal(syscall.SIGSTOP) },
		func(t *testing.T, addr string, redis *exec.Cmd) { redis.Process.Signal(syscall.SIGCONT) })
}

// outageP99Max bounds the 99th percentile latency during a Redis outage:
// far above a Redis call's 150ms timeout, far below a client's patience.
const outageP99Max = 500 * time.Millisecond

// testRedisFault runs a load on a cache route backed by Redis, causes a
// fault to Redis, keeps the load on for outageFor, restores Redis and
// waits for the first cache hit.
func testRedisFault(t *testing.T, name string, cause, restore func(t *testing.T, addr string, redis *exec.Cmd)) {
	redisAddr := freeAddr(t)
	redis := startRedisOn(t, redisAddr)
	var upstreamHits atomic.Int64
	up := countingUpstream(t, &upstreamHits)
	p := startConfig(t, t.TempDir(), cacheConfig(up.URL, "redis://"+redisAddr+"/0", ""), 1)

	const (
		workers    = 8
		keys       = 50
		upFor      = 1500 * time.Millisecond
		outageFor  = 3 * time.Second // longer than the breaker's 2s cooldown: a probe fails too
		resumeWait = 10 * time.Second
	)
	const (
		phaseUp = iota
		phaseOutage
		phaseBack
		phases
	)
	names := [phases]string{"up", "outage", "back"}
	var phase atomic.Int32
	var byPhase [phases]phaseCounts
	stop := make(chan struct{})
	deadline := time.Now().Add(upFor + outageFor + resumeWait + 5*time.Second)
	hc := keepAliveClient(t, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
				ph := phase.Load()
				c := &byPhase[ph]
				path := fmt.Sprintf("/k/%d", (w*7+i)%keys)
				start := time.Now()
				resp, err := hc.Get(p.URL(path))
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				c.requests.Add(1)
				c.mu.Lock()
				c.lat = append(c.lat, took)
				c.mu.Unlock()
				switch {
				case err != nil:
					c.fail(fmt.Sprintf("%s: %v", path, err))
				case resp.StatusCode != 200 || !strings.HasPrefix(string(body), "page "+path+" #"):
					c.fail(fmt.Sprintf("%s: %d %q", path, resp.StatusCode, body))
				case strings.Contains(resp.Header.Get("Cache-Status"), "; hit"):
					c.hits.Add(1)
				}
			}
		}()
	}

	time.Sleep(upFor)
	cause(t, redisAddr, redis)
	// Requests sent from now on cannot have reached Redis before the fault.
	time.Sleep(50 * time.Millisecond)
	phase.Store(phaseOutage)
	time.Sleep(outageFor)
	phase.Store(phaseBack) // before the restore: no outage request may hit
	restore(t, redisAddr, redis)
	resumed := time.Now()
	var resumedAfter time.Duration
	for time.Since(resumed) < resumeWait {
		if byPhase[phaseBack].hits.Load() > 0 {
			resumedAfter = time.Since(resumed)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // some load on the resumed cache
	close(stop)
	wg.Wait()

	var total, errs int64
	for i := range byPhase {
		c := &byPhase[i]
		total += c.requests.Load()
		errs += c.errors.Load()
		t.Logf("phase %-6s: %d requests, %d errors, %d hits; latency %v", names[i],
			c.requests.Load(), c.errors.Load(), c.hits.Load(), c.lat)
		if c.firstErr != "" {
			t.Errorf("phase %s: first client error: %s", names[i], c.firstErr)
		}
	}
	outage := &byPhase[phaseOutage]
	faultSummary(t, name, "%d requests, %d errors, %d during outage (%d hits then, latency %v), caching resumed %v after redis came back; upstream hit %d times",
		total, errs, outage.requests.Load(), outage.hits.Load(), outage.lat, resumedAfter.Round(time.Millisecond), upstreamHits.Load())
	if errs != 0 {
		t.Errorf("%d client errors, want 0", errs)
	}
	if byPhase[phaseUp].hits.Load() == 0 {
		t.Errorf("no cache hits before the kill: the route does not cache through redis")
	}
	if outage.requests.Load() < 50 {
		t.Errorf("only %d requests during the outage: not under load", outage.requests.Load())
	}
	if outage.hits.Load() != 0 {
		t.Errorf("%d cache hits during the outage: the fault did not take", outage.hits.Load())
	}
	if p99 := outage.lat.percentile(0.99); p99 > outageP99Max {
		t.Errorf("p99 latency %v during the outage, want under %v", p99, outageP99Max)
	}
	if resumedAfter == 0 {
		t.Errorf("no cache hit within %v of redis coming back: caching did not resume", resumeWait)
	}
}

// phaseCounts are the figures of one phase of a load.
type phaseCounts struct {
	requests, errors, hits atomic.Int64
	mu                     sync.Mutex
	lat                    latencies
	firstErr               string
}

func (c *phaseCounts) fail(msg string) {
	c.errors.Add(1)
	c.mu.Lock()
	if c.firstErr == "" {
		c.firstErr = msg
	}
	c.mu.Unlock()
}
