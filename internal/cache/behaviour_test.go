package cache

import (
	"bytes"
	"context"
	"fmt"
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

// protocols runs f over HTTP/1.1 and HTTP/2 servers in front of h.
func protocols(t *testing.T, h http.Handler, f func(t *testing.T, url string, c *http.Client)) {
	t.Run("HTTP/1.1", func(t *testing.T) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		c := srv.Client()
		c.Timeout = 10 * time.Second
		c.Transport.(*http.Transport).MaxConnsPerHost = 100
		f(t, srv.URL, c)
	})
	t.Run("HTTP/2", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		defer srv.Close()
		c := srv.Client()
		c.Timeout = 10 * time.Second
		f(t, srv.URL, c)
	})
}

func get(t *testing.T, c *http.Client, url string, kv ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return res, string(b)
}

func TestCollapsing50Clients(t *testing.T) {
	o := newOrigin(nil, 200, "shared body", "Cache-Control", "max-age=60")
	o.delay = 300 * time.Millisecond
	h := newTestCache(t, config.Cache{}, o, nil)
	protocols(t, h, func(t *testing.T, url string, c *http.Client) {
		o.hits.Store(0)
		path := url + "/collapse-" + strings.ReplaceAll(t.Name(), "/", "_")
		var wg sync.WaitGroup
		var bad atomic.Int64
		var collapsed atomic.Int64
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, b := get(t, c, path)
				if res.StatusCode != 200 || b != "shared body" {
					bad.Add(1)
				}
				if strings.Contains(res.Header.Get("Cache-Status"), "collapsed") {
					collapsed.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := o.hits.Load(); n != 1 {
			t.Errorf("upstream hits for 50 concurrent misses: %d, want 1", n)
		}
		if bad.Load() != 0 {
			t.Errorf("%d clients got a wrong response", bad.Load())
		}
		if collapsed.Load() == 0 {
			t.Errorf("no response says collapsed")
		}
	})
}

func TestCollapsingUncacheable(t *testing.T) {
	// The leader's response turns out not storable: every waiter must still
	// get a correct answer, each from its own upstream request.
	o := newOrigin(nil, 200, "private body ", "Cache-Control", "private")
	o.echo = "X-User"
	o.delay = 100 * time.Millisecond
	h := newTestCache(t, config.Cache{}, o, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	c.Timeout = 10 * time.Second
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprint("user", i)
			res, b := get(t, c, srv.URL+"/p", "X-User", user)
			if res.StatusCode != 200 || b != "private body "+user {
				errs <- fmt.Sprintf("%s got %d %q", user, res.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := o.hits.Load(); n != 20 {
		t.Errorf("upstream hits %d, want 20 (one per client: nothing shareable)", n)
	}
}

func TestCollapsingVaryMismatch(t *testing.T) {
	o := newOrigin(nil, 200, "lang=", "Cache-Control", "max-age=60", "Vary", "Accept-Language")
	o.echo = "Accept-Language"
	o.delay = 200 * time.Millisecond
	h := newTestCache(t, config.Cache{}, o, nil)
	var wg sync.WaitGroup
	got := make([]string, 6)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				time.Sleep(20 * time.Millisecond) // after the leader
			}
			lang := []string{"en", "fr"}[i%2]
			got[i] = lang + ":" + body(t, do(h, "GET", "http://a.test/v", "Accept-Language", lang))
		}()
	}
	wg.Wait()
	for _, g := range got {
		lang, b, _ := strings.Cut(g, ":")
		if b != "lang="+lang {
			t.Errorf("Accept-Language %s got %q (a collapsed waiter got another variant)", lang, b)
		}
	}
}

func TestCollapsedWaiterNeverGetsSetCookie(t *testing.T) {
	o := newOrigin(nil, 200, "page", "Cache-Control", "public, max-age=60", "Set-Cookie", "sid=alice")
	o.delay = 200 * time.Millisecond
	h := newTestCache(t, config.Cache{}, o, nil)
	var wg sync.WaitGroup
	var cookies atomic.Int64
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := do(h, "GET", "http://a.test/c"); res.Header.Get("Set-Cookie") != "" {
				cookies.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := cookies.Load(); n != 1 {
		t.Errorf("%d responses carried Set-Cookie, want 1 (the leader's own)", n)
	}
}

func TestStreamingWhileStoring(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int64
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "part1")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "part2")
	})
	h := newTestCache(t, config.Cache{}, up, nil)
	protocols(t, h, func(t *testing.T, url string, c *http.Client) {
		hits.Store(0)
		release = make(chan struct{})
		path := url + "/s-" + strings.ReplaceAll(t.Name(), "/", "_")
		res, err := c.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 5)
		start := time.Now()
		if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "part1" {
			t.Fatalf("first chunk: %q, %v", first, err)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("first chunk took %v: not streamed", time.Since(start))
		}
		close(release)
		rest, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(rest) != "part2" {
			t.Fatalf("rest %q", rest)
		}
		res2, b := get(t, c, path)
		if b != "part1part2" || !strings.Contains(res2.Header.Get("Cache-Status"), "hit") {
			t.Errorf("after streaming: %q %q, want a hit with the whole body", b, res2.Header.Get("Cache-Status"))
		}
		if hits.Load() != 1 {
			t.Errorf("upstream hits %d, want 1", hits.Load())
		}
	})
}

func TestMaxObjectSize(t *testing.T) {
	big := strings.Repeat("x", 5000)
	for _, withCL := range []bool{true, false} {
		t.Run(fmt.Sprint("Content-Length=", withCL), func(t *testing.T) {
			var hits atomic.Int64
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Cache-Control", "max-age=60")
				if withCL {
					w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				}
				for i := 0; i < len(big); i += 1000 {
					io.WriteString(w, big[i:i+1000])
					w.(http.Flusher).Flush()
				}
			})
			h := newTestCache(t, config.Cache{MaxObjectSize: 4096}, up, nil)
			for i := 1; i <= 2; i++ {
				res := do(h, "GET", "http://a.test/big")
				if b := body(t, res); b != big {
					t.Fatalf("request %d: body of %d bytes, want %d", i, len(b), len(big))
				}
				if cs := res.Header.Get("Cache-Status"); strings.Contains(cs, "hit") {
					t.Errorf("request %d: Cache-Status %q: an object past max_object_size was stored", i, cs)
				}
			}
			if hits.Load() != 2 {
				t.Errorf("hits %d, want 2", hits.Load())
			}
			small := newTestCache(t, config.Cache{MaxObjectSize: 8192}, up, nil)
			do(small, "GET", "http://a.test/big")
			if cs := do(small, "GET", "http://a.test/big").Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
				t.Errorf("under max_object_size: Cache-Status %q, want hit", cs)
			}
		})
	}
}

func TestMaxSizeLRU(t *testing.T) {
	o := newOrigin(nil, 200, strings.Repeat("b", 3000), "Cache-Control", "max-age=60")
	h := newTestCache(t, config.Cache{MaxSize: 12000, MaxObjectSize: 4000}, o, nil)
	m := h.store.(*memoryStore)
	do(h, "GET", "http://a.test/1")
	do(h, "GET", "http://a.test/2")
	do(h, "GET", "http://a.test/3")
	do(h, "GET", "http://a.test/1") // 1 is now the most recently used
	do(h, "GET", "http://a.test/4") // evicts 2, the least recently used
	if n, used := m.stats(); used > 12000 || n != 3 {
		t.Errorf("store holds %d entries, %d bytes; want 3 entries within 12000 bytes", n, used)
	}
	for path, want := range map[string]string{"/1": "hit", "/3": "hit", "/4": "hit"} {
		if cs := do(h, "GET", "http://a.test"+path).Header.Get("Cache-Status"); !strings.Contains(cs, want) {
			t.Errorf("%s: Cache-Status %q, want %s", path, cs, want)
		}
	}
	if cs := do(h, "GET", "http://a.test/2").Header.Get("Cache-Status"); !strings.Contains(cs, "uri-miss") {
		t.Errorf("/2: Cache-Status %q, want uri-miss (evicted)", cs)
	}
}

func TestNewValidates(t *testing.T) {
	next := http.NotFoundHandler()
	bad := []struct {
		name string
		cfg  config.Cache
		want string
	}{
		{"negative max_size", config.Cache{MaxSize: -1}, "max_size"},
		{"negative max_object_size", config.Cache{MaxObjectSize: -1}, "max_object_size"},
		{"object larger than cache", config.Cache{MaxSize: 1000, MaxObjectSize: 2000}, "max_object_size"},
		{"unknown store", config.Cache{Store: "memcached://127.0.0.1:11211"}, "store"},
		{"bad redis url", config.Cache{Store: "redis://127.0.0.1:6379/notadb"}, "store"},
		{"unknown key part", config.Cache{Key: []string{"path", "cookie"}}, "key"},
		{"duplicate key part", config.Cache{Key: []string{"path", "path"}}, "key"},
		{"key without path", config.Cache{Key: []string{"host", "query"}}, "path"},
	}
	for _, tc := range bad {
		_, err := New(filled(tc.cfg), next, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	good := []config.Cache{
		{},
		{Store: "memory", MaxSize: 1 << 20},
		{MaxSize: 1000}, // default max_object_size shrinks to max_size
		{Store: "redis://127.0.0.1:1/0"},
		{Key: []string{"method", "scheme", "host", "path", "query"}},
	}
	for _, cfg := range good {
		h, err := New(filled(cfg), next, Options{})
		if err != nil {
			t.Errorf("%+v: %v", cfg, err)
			continue
		}
		h.Close(context.Background())
	}
	// New re-defaults nothing: unset fields are refused, filled ones kept.
	for _, cfg := range []config.Cache{{}, {MaxObjectSize: 1, Store: "memory", Key: []string{"path"}}, {MaxSize: 1, Store: "memory", Key: []string{"path"}}, {MaxSize: 1, MaxObjectSize: 1, Key: []string{"path"}}, {MaxSize: 1, MaxObjectSize: 1, Store: "memory"}} {
		if _, err := New(cfg, next, Options{}); err == nil || !strings.Contains(err.Error(), "SetDefaults") {
			t.Errorf("%+v: err %v, want one saying SetDefaults fills it", cfg, err)
		}
	}
	h, _ := New(filled(config.Cache{}), next, Options{})
	if h.maxObject != config.DefaultCacheMaxObjectSize || h.store.(*memoryStore).max != config.DefaultCacheMaxSize {
		t.Errorf("defaults: max_object %d, max_size %d", h.maxObject, h.store.(*memoryStore).max)
	}
}

func TestPurge(t *testing.T) {
	o := newOrigin(nil, 200, "x", "Cache-Control", "max-age=60")
	h := newTestCache(t, config.Cache{}, o, nil)
	fill := func() {
		for _, u := range []string{"http://a.test/api/1", "http://a.test/api/2?q=1", "http://a.test/apix", "http://b.test/api/1", "http://a.test/other"} {
			do(h, "GET", u)
		}
	}
	cases := []struct {
		url     string
		prefix  bool
		n       int
		gone    []string
		present []string
	}{
		{"http://a.test/api/1", false, 1, []string{"http://a.test/api/1"}, []string{"http://a.test/api/2?q=1", "http://b.test/api/1"}},
		{"http://A.test:80/api/2?q=1", false, 1, []string{"http://a.test/api/2?q=1"}, []string{"http://a.test/api/1"}},
		{"http://a.test/api/", true, 2, []string{"http://a.test/api/1", "http://a.test/api/2?q=1"}, []string{"http://a.test/apix", "http://b.test/api/1"}},
		{"http://a.test/", true, 4, []string{"http://a.test/other", "http://a.test/apix"}, []string{"http://b.test/api/1"}},
		{"/api/1", false, 2, []string{"http://a.test/api/1", "http://b.test/api/1"}, []string{"http://a.test/api/2?q=1"}},
		{"/api", true, 4, []string{"http://a.test/apix", "http://b.test/api/1"}, []string{"http://a.test/other"}},
	}
	for _, tc := range cases {
		h.store = newMemoryStore(1 << 20)
		fill()
		n, err := h.Purge(context.Background(), tc.url, tc.prefix)
		if err != nil || n != tc.n {
			t.Errorf("Purge(%q, %v) = %d, %v; want %d", tc.url, tc.prefix, n, err, tc.n)
		}
		for _, u := range tc.gone {
			if cs := do(h, "GET", u).Header.Get("Cache-Status"); !strings.Contains(cs, "uri-miss") {
				t.Errorf("Purge(%q, %v): %s still cached (%q)", tc.url, tc.prefix, u, cs)
			}
		}
		for _, u := range tc.present {
			if cs := do(h, "GET", u).Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
				t.Errorf("Purge(%q, %v): %s purged too (%q)", tc.url, tc.prefix, u, cs)
			}
		}
	}
	if _, err := h.Purge(context.Background(), "not a url", false); err == nil {
		t.Error("Purge of a relative non-path: no error")
	}
}

func TestPurgeVariants(t *testing.T) {
	o := newOrigin(nil, 200, "x", "Cache-Control", "max-age=60", "Vary", "Accept-Language")
	h := newTestCache(t, config.Cache{}, o, nil)
	do(h, "GET", "http://a.test/v", "Accept-Language", "en")
	do(h, "GET", "http://a.test/v", "Accept-Language", "fr")
	n, err := h.Purge(context.Background(), "http://a.test/v", false)
	if err != nil || n != 3 {
		t.Errorf("Purge = %d, %v; want 3 (marker and two variants)", n, err)
	}
	if cnt, _ := h.store.(*memoryStore).stats(); cnt != 0 {
		t.Errorf("%d entries left", cnt)
	}
}

func TestUpgradeAndFlushBypass(t *testing.T) {
	// Unsafe-method responses keep streaming through the status writer.
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the cache: %v", err)
		}
		io.Copy(w, bytes.NewReader([]byte("b"))) // io.ReaderFrom path
	})
	h := newTestCache(t, config.Cache{}, up, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := srv.Client().Post(srv.URL+"/x", "text/plain", strings.NewReader("z"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ab" || res.Header.Get("Cache-Status") != "portico; fwd=bypass" {
		t.Errorf("POST: %q, Cache-Status %q", b, res.Header.Get("Cache-Status"))
	}
}

func TestStaleWhileRevalidateOneRefresh(t *testing.T) {
	clock := newClock()
	o := newOrigin(clock, 200, "v1", "Cache-Control", "max-age=1, stale-while-revalidate=60")
	h := newTestCache(t, config.Cache{}, o, clock)
	do(h, "GET", "http://a.test/s")
	clock.Advance(5 * time.Second)
	o.mu.Lock()
	o.delay = 500 * time.Millisecond
	o.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "http://a.test/s", nil)
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, r)
			if d := time.Since(start); d > 400*time.Millisecond {
				t.Errorf("stale hit took %v: waited for the refresh", d)
			}
			if w.Body.String() != "v1" {
				t.Errorf("body %q, want the stale v1", w.Body.String())
			}
		}()
	}
	wg.Wait()
	h.bg.Wait()
	if n := o.hits.Load(); n != 2 {
		t.Errorf("upstream hits %d, want 2 (one fill, one background refresh)", n)
	}
}

// readFromRecorder records whether ReadFrom (sendfile's door) was used.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom int
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom++
	return io.Copy(r.ResponseRecorder, src)
}

func TestWrappersKeepReaderFromAndFlusher(t *testing.T) {
	for _, tc := range []struct {
		name, method, cc string
		wantReadFrom     int
		wantBody         string
	}{
		{"uncacheable GET passes ReadFrom through", "GET", "no-store", 1, "payload"},
		{"POST passes ReadFrom through", "POST", "max-age=60", 1, "payload"},
		{"stored GET is teed (ReadFrom not used), body intact", "GET", "max-age=60", 0, "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var flushOK bool
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tc.cc)
				_, flushOK = w.(http.Flusher)
				if _, ok := w.(http.Hijacker); !ok {
					t.Error("wrapper lost http.Hijacker")
				}
				rf, ok := w.(io.ReaderFrom)
				if !ok {
					t.Fatal("wrapper lost io.ReaderFrom")
				}
				rf.ReadFrom(strings.NewReader("payload"))
			})
			h := newTestCache(t, config.Cache{}, up, nil)
			rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://a.test/rf", nil))
			if !flushOK {
				t.Error("wrapper lost http.Flusher")
			}
			if rec.readFrom != tc.wantReadFrom {
				t.Errorf("client ReadFrom calls %d, want %d", rec.readFrom, tc.wantReadFrom)
			}
			if rec.Body.String() != tc.wantBody {
				t.Errorf("body %q", rec.Body.String())
			}
		})
	}
}

func TestStats(t *testing.T) {
	o := newOrigin(nil, 200, "x", "Cache-Control", "max-age=60")
	h := newTestCache(t, config.Cache{}, o, nil)
	do(h, "GET", "http://a.test/1")
	do(h, "GET", "http://a.test/1")
	do(h, "GET", "http://a.test/1")
	do(h, "POST", "http://a.test/2")
	s := h.Stats()
	if s.Hits != 2 || s.Misses != 1 || s.Bypass != 1 || s.Stored != 1 || s.Entries != 1 || s.Bytes <= 0 {
		t.Errorf("Stats = %+v", s)
	}
}
