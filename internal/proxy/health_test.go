package proxy

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
)

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestActiveHealthCheck(t *testing.T) {
	var sick atomic.Bool
	flaky := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && sick.Load() {
			http.Error(w, "sick", 500)
			return
		}
		io.WriteString(w, "flaky")
	}))
	steady := startUpstream(t, named("steady"))
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{
		Upstreams: []string{flaky.URL, steady.URL},
		Health:    &config.Health{Path: "/healthz", Interval: ms(30), Timeout: ms(500)},
	}, Options{Logger: log})

	sick.Store(true)
	waitFor(t, 3*time.Second, "upstream down", func() bool { return h.pool.ups[0].activeDown.Load() })
	for _, got := range sequence(t, h, 6, "") {
		if got != "steady" {
			t.Fatalf("request went to unhealthy upstream: %q", got)
		}
	}
	sick.Store(false)
	waitFor(t, 3*time.Second, "upstream up", func() bool { return !h.pool.ups[0].activeDown.Load() })
	got := strings.Join(sequence(t, h, 4, ""), " ")
	if !strings.Contains(got, "flaky") {
		t.Errorf("recovered upstream not back in rotation: %s", got)
	}
	l := logs.String()
	for _, want := range []string{`msg="upstream down" upstream=` + flaky.Addr + ` reason="health check: status 500"`,
		`msg="upstream up" upstream=` + flaky.Addr} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

func TestActiveHealthExpect(t *testing.T) {
	var served atomic.Int64
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			served.Add(1)
		}
		w.WriteHeader(204)
	}))
	h := newHandler(t, config.Proxy{
		Upstreams: []string{up.URL},
		Health:    &config.Health{Path: "/healthz", Interval: ms(20), Expect: 200},
	}, Options{})
	waitFor(t, 3*time.Second, "204 counted as unhealthy when 200 is expected", func() bool { return h.pool.ups[0].activeDown.Load() })
	// Every upstream failing its active check: 502, nothing tried.
	w := serve(h, "GET", "/", "", http.Header{"Accept": {"text/html"}})
	if n := served.Load(); n != 0 {
		t.Errorf("down upstream got %d requests", n)
	}
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "502 Bad Gateway") {
		t.Errorf("got %d %q, want the 502 error page", w.Code, w.Body)
	}
}

func TestActiveHealthDownOnRefused(t *testing.T) {
	up := startUpstream(t, named("a"))
	h := newHandler(t, config.Proxy{
		Upstreams: []string{up.URL},
		Health:    &config.Health{Path: "/", Interval: ms(20), Timeout: ms(200)},
	}, Options{})
	up.Kill()
	waitFor(t, 3*time.Second, "refused upstream marked down", func() bool { return h.pool.ups[0].activeDown.Load() })
}

func TestCloseStopsHealthChecks(t *testing.T) {
	var checks atomic.Int64
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { checks.Add(1) }))
	before := runtime.NumGoroutine()
	cfg := config.Proxy{Upstreams: []string{up.URL}, Health: &config.Health{Path: "/", Interval: ms(10)}}
	cfg.SetDefaults()
	h, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "a few checks", func() bool { return checks.Load() >= 3 })
	if err := h.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A check already on the wire when Close came may still reach the
	// upstream's handler (seen once in CI): count from a moment later.
	time.Sleep(20 * time.Millisecond)
	n := checks.Load()
	time.Sleep(100 * time.Millisecond)
	if got := checks.Load(); got != n {
		t.Errorf("%d checks after Close", got-n)
	}
	waitFor(t, 2*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// refusing returns an address that accepts TCP connections and resets them
// at once, counting them: a crashed app behind a live port.
func refusing(t *testing.T) (addr string, hits *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hits = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String(), hits
}

func TestPassiveHealth(t *testing.T) {
	bad, hits := refusing(t)
	good := startUpstream(t, named("good"))
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{
		Upstreams:   []string{bad, good.URL},
		MaxFails:    1,
		FailTimeout: ms(1000),
	}, Options{Logger: log})
	for _, got := range sequence(t, h, 10, "") {
		if got != "good" {
			t.Fatalf("got %q", got)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("bad upstream tried %d times within fail_timeout, want 1", n)
	}
	if l := logs.String(); !strings.Contains(l, `msg="upstream down" upstream=`+strings.TrimPrefix(bad, "http://")) {
		t.Errorf("no upstream down log:\n%s", l)
	}
	time.Sleep(1050 * time.Millisecond)
	sequence(t, h, 4, "")
	if n := hits.Load(); n != 2 {
		t.Errorf("after fail_timeout the bad upstream was tried %d times in all, want 2", n)
	}
}

func TestPassiveHealthMaxFails(t *testing.T) {
	bad, hits := refusing(t)
	good := startUpstream(t, named("good"))
	h := newHandler(t, config.Proxy{
		Upstreams:   []string{bad, good.URL},
		MaxFails:    3,
		FailTimeout: config.Duration(10 * time.Second),
	}, Options{})
	sequence(t, h, 20, "")
	if n := hits.Load(); n != 3 {
		t.Errorf("bad upstream tried %d times, want max_fails=3", n)
	}
}

func TestPassiveRecoveryLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused for now
	other := startUpstream(t, named("other"))
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{Upstreams: []string{"http://" + addr, other.URL}, FailTimeout: ms(100)}, Options{Logger: log})
	sequence(t, h, 2, "")
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port reused: %v", err)
	}
	serveUpstream(t, ln2, named("back"))
	time.Sleep(150 * time.Millisecond)
	got := strings.Join(sequence(t, h, 4, ""), " ")
	if !strings.Contains(got, "back") {
		t.Errorf("recovered upstream not used: %s", got)
	}
	if l := logs.String(); !strings.Contains(l, `msg="upstream up" upstream=`+addr) {
		t.Errorf("no upstream up log:\n%s", l)
	}
}

// TestAllPassiveDownStillTried: when passive checks have marked every
// upstream down, they are tried anyway (nginx), so a recovered app answers
// at once instead of 502 for fail_timeout.
func TestAllPassiveDownStillTried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newHandler(t, config.Proxy{Upstreams: []string{"http://" + addr}, FailTimeout: config.Duration(time.Minute)}, Options{})
	if w := serve(h, "GET", "/", "", nil); w.Code != http.StatusBadGateway {
		t.Fatalf("dead upstream: status %d, want 502", w.Code)
	}
	if h.pool.ups[0].downUntil.Load() == 0 {
		t.Fatal("upstream not marked down")
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port reused: %v", err)
	}
	serveUpstream(t, ln2, named("back"))
	if w := serve(h, "GET", "/", "", nil); w.Code != 200 || body(t, w) != "back" {
		t.Errorf("got %d %q, want 200 back", w.Code, body(t, w))
	}
}

func TestAllRefusing502(t *testing.T) {
	a, hitsA := refusing(t)
	b, hitsB := refusing(t)
	h := newHandler(t, config.Proxy{Upstreams: []string{a, b}}, Options{})
	w := serve(h, "GET", "/", "", http.Header{"Accept": {"text/html"}})
	if w.Code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(w.Body.String(), "portico") {
		t.Errorf("not the error page: %s %q", ct, w.Body)
	}
	if hitsA.Load() != 1 || hitsB.Load() != 1 {
		t.Errorf("tries: %d and %d, want 1 each", hitsA.Load(), hitsB.Load())
	}
}
