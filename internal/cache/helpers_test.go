package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
)

// fakeClock is the time seen by the cache and the test origin.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is a test upstream: a fixed response (Date from the clock unless
// given), conditional GETs answered with 304, hits counted.
type origin struct {
	clock *fakeClock
	hits  atomic.Int64

	mu      sync.Mutex
	status  int
	header  http.Header
	body    string
	echo    string // request header echoed into the body
	delay   time.Duration
	lastReq http.Header
	reqs    []string // method + path of each request
}

func newOrigin(clock *fakeClock, status int, body string, kv ...string) *origin {
	o := &origin{clock: clock, status: status, body: body, header: http.Header{}}
	for i := 0; i+1 < len(kv); i += 2 {
		o.header.Add(kv[i], kv[i+1])
	}
	return o
}

func (o *origin) set(status int, body string, kv ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status, o.body, o.header = status, body, http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.header.Add(kv[i], kv[i+1])
	}
}

func (o *origin) last() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastReq
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.hits.Add(1)
	o.mu.Lock()
	o.lastReq = r.Header.Clone()
	o.reqs = append(o.reqs, r.Method+" "+r.URL.RequestURI())
	status, hdr, body, echo, delay := o.status, o.header.Clone(), o.body, o.echo, o.delay
	o.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	if hdr.Get("Date") == "" && o.clock != nil {
		w.Header().Set("Date", o.clock.Now().UTC().Format(http.TimeFormat))
	}
	if et := hdr.Get("Etag"); et != "" && r.Header.Get("If-None-Match") == et {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if lm := hdr.Get("Last-Modified"); lm != "" && hdr.Get("Etag") == "" && r.Header.Get("If-Modified-Since") == lm {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if echo != "" {
		body += r.Header.Get(echo)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}

// newTestCache builds a memory cache on the fake clock.
func newTestCache(t testing.TB, cfg config.Cache, next http.Handler, clock *fakeClock) *Handler {
	t.Helper()
	h, err := New(filled(cfg), next, Options{Name: "test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if clock != nil {
		h.now = clock.Now
		if m, ok := h.store.(*memoryStore); ok {
			m.nowFunc = clock.Now
		}
	}
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		h.Close(ctx)
	})
	return h
}

// do sends one request through h and waits for background refreshes.
func do(h *Handler, method, target string, kv ...string) *http.Response {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.EqualFold(kv[i], "Host") {
			r.Host = kv[i+1]
			continue
		}
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	h.bg.Wait()
	return w.Result()
}

func body(t testing.TB, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// filled is cfg with its defaults, as config.Load fills them.
func filled(cfg config.Cache) config.Cache {
	cfg.SetDefaults()
	return cfg
}
