package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault: 100,000 distinct cacheable pages of 1 KB (about 140 MB as the
// cache counts them) through a memory cache of max_size = "16MB". The
// cache evicts (the admin /metrics shows at most 16 MB held and far fewer
// entries than keys), the oldest keys are gone while the newest hit, and
// portico's resident memory stays bounded: its peak (VmHWM) grows by less
// than cacheRSSGrowthMax over the idle process (portico built without the
// race detector, even under -race: see binaryWithoutRace).
func TestFaultCacheMemoryBoundedWith100kKeys(t *testing.T) {
	// Slow and independent: runs beside the other parallel tests once
	// the sequential ones are done.
	t.Parallel()
	if testing.Short() {
		t.Skip("100,000 requests (-short)")
	}
	const (
		keys      = 100_000
		bodySize  = 1024
		maxSize   = 16 << 20
		workers   = 16
		timeLimit = 60 * time.Second
	)
	// cacheRSSGrowthMax: 16 MB of entries, the Go heap's headroom over its
	// live data (GOGC=100 lets it reach twice) and the buffers of the
	// connections. Without eviction the growth is several times this.
	const cacheRSSGrowthMax = 96 << 20
	up := rawPageServer(t, bodySize)
	admin := freeAddr(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"portico.toml": fmt.Sprintf(`
[server]
access_log = "off"
admin = %q
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  [site.route.proxy]
  upstreams = [%q]
  [site.route.cache]
  max_size = "16MB"
`, admin, up)})
	p := startBinary(t, binaryWithoutRace(t), dir, 1, "run", "-c", "portico.toml")
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stdout.String(), "admin on") })
	pid := p.cmd.Process.Pid
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	clients := make([]*rawClient, workers)
	for w := range clients {
		clients[w] = &rawClient{addr: addr}
		defer clients[w].close()
		for i := range 10 { // warm up: connections, pools, first allocations
			if err := fetchPage(clients[w], fmt.Sprintf("/warm/%d/%d", w, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	baseRSS := procStatusKB(pid, "VmRSS")

	var next, done, errs atomic.Int64
	var firstErr atomic.Value
	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // VmHWM is the peak too; this also shows the course
		defer close(sampled)
		for {
			if rss := procStatusKB(pid, "VmRSS"); rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	deadline := start.Add(timeLimit)
	var wg sync.WaitGroup
	for _, rc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= keys {
					return
				}
				if err := fetchPage(rc, fmt.Sprintf("/k/%d", i)); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stopSampling)
	<-sampled
	hwm := procStatusKB(pid, "VmHWM")
	endRSS := procStatusKB(pid, "VmRSS")

	_, metrics := get(t, "http://"+admin+"/metrics")
	entries, okE := metricValue(metrics, "portico_cache_entries", "")
	held, okB := metricValue(metrics, "portico_cache_bytes", "")
	stored, _ := metricValue(metrics, "portico_cache_stored_total", "")
	_, oldest, _, errOldest := clients[0].get("/k/0")
	_, newest, _, errNewest := clients[0].get(fmt.Sprintf("/k/%d", keys-1))

	growth := max(hwm, peakRSS.Load()) - baseRSS
	faultSummary(t, "cache-memory", "%d distinct keys (%d errors) in %v into a 16MB cache: %.0f entries, %.1f MB held, %.0f stored; RSS %d MB idle, peak %d MB (growth %d MB, bound %d MB), %d MB at the end",
		done.Load(), errs.Load(), took.Round(time.Millisecond), entries, held/(1<<20), stored,
		baseRSS>>10, max(hwm, peakRSS.Load())>>10, growth>>10, cacheRSSGrowthMax>>20, endRSS>>10)

	if done.Load() != keys {
		t.Fatalf("%d of %d requests done in %v", done.Load(), keys, timeLimit)
	}
	if errs.Load() != 0 {
		t.Errorf("%d requests failed; first: %v", errs.Load(), firstErr.Load())
	}
	if !okE || !okB {
		t.Fatalf("admin /metrics lacks portico_cache_entries or portico_cache_bytes:\n%s", metrics)
	}
	if held > maxSize {
		t.Errorf("cache holds %.0f bytes, over max_size %d", held, maxSize)
	}
	if entries <= 0 || entries >= keys/4 {
		t.Errorf("cache holds %.0f entries of %d keys: want evictions down to what 16 MB holds", entries, keys)
	}
	if !strings.Contains(oldest, "miss") {
		t.Errorf("first key after the run: Cache-Status %q (%v), want a miss (evicted)", oldest, errOldest)
	}
	if !strings.Contains(newest, "; hit") {
		t.Errorf("last key after the run: Cache-Status %q (%v), want a hit", newest, errNewest)
	}
	if growth<<10 > cacheRSSGrowthMax {
		t.Errorf("portico's RSS grew by %d MB (idle %d MB, peak %d MB), bound %d MB", growth>>10, baseRSS>>10, (baseRSS+growth)>>10, cacheRSSGrowthMax>>20)
	}
}

// fetchPage gets path and checks it is a whole 1 KB page.
func fetchPage(rc *rawClient, path string) error {
	status, _, n, err := rc.get(path)
	if err != nil {
		return err
	}
	if status != 200 || n != 1024 {
		return fmt.Errorf("%s: %d with %d bytes", path, status, n)
	}
	return nil
}

// binaryWithoutRace is portico built without the race detector, which
// multiplies memory (shadow memory) and time: the figures of a memory
// test under -race would say nothing about portico. Under -race it is
// built once next to the race binary.
func binaryWithoutRace(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return binary
	}
	bin := filepath.Join(filepath.Dir(binary), "portico-norace")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	out, err := exec.Command("go", "build", "-o", bin, "portico/cmd/portico").CombinedOutput()
	if err != nil {
		t.Fatalf("building portico without -race: %v\n%s", err, out)
	}
	return bin
}
