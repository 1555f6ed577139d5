package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
)

// echoBody answers with its name and the request body.
func echoBody(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, name+":"+string(b))
	})
}

func TestRetryPostAfterConnectionRefused(t *testing.T) {
	dead := "http://" + deadPort(t)
	good := startUpstream(t, echoBody("good"))
	h := newHandler(t, config.Proxy{Upstreams: []string{dead, good.URL}}, Options{})
	fe := front(t, h)
	// Twice, so that round robin starts on the dead one at least once.
	for range 2 {
		resp, err := http.Post(fe.URL+"/", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "good:payload" {
			t.Errorf("got %d %q, want 200 good:payload", resp.StatusCode, b)
		}
	}
}

// TestNoRetryPostAfterReset: a POST whose connection was reset after it was
// sent may have had effects: it is not replayed.
func TestNoRetryPostAfterReset(t *testing.T) {
	var hits atomic.Int64
	crash := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}))
	bad := crash.URL
	good := startUpstream(t, echoBody("good"))
	h := newHandler(t, config.Proxy{Upstreams: []string{bad, good.URL}}, Options{})
	w := recorderServe(h, postRequest("/", "x"))
	if w.Code != http.StatusBadGateway {
		t.Errorf("POST after reset: status %d %q, want 502", w.Code, w.Body)
	}
	if good.reqs.Load() != 0 || hits.Load() != 1 {
		t.Errorf("POST replayed: good=%d bad=%d", good.reqs.Load(), hits.Load())
	}
	// A GET that met the same fate is idempotent: it goes to the other.
	h2 := newHandler(t, config.Proxy{Upstreams: []string{bad, good.URL}}, Options{})
	if w := serve(h2, "GET", "/", "", nil); w.Code != 200 || body(t, w) != "good:" {
		t.Errorf("GET after reset: got %d %q, want 200 good:", w.Code, w.Body)
	}
	if hits.Load() != 2 {
		t.Errorf("crashing upstream hit %d times, want 2", hits.Load())
	}
}

func postRequest(target, body string) *http.Request {
	r := httptestRequest("POST", target, "", nil)
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

func TestRetryIdempotentOn503(t *testing.T) {
	busy := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	good := startUpstream(t, echoBody("good"))
	h := newHandler(t, config.Proxy{Upstreams: []string{busy.URL, good.URL}}, Options{})
	for _, got := range sequence(t, h, 4, "") {
		if got != "good:" {
			t.Errorf("GET got %q, want good:", got)
		}
	}
	// A POST is not retried on a status: the app may have acted.
	codes := map[int]int{}
	for range 4 {
		codes[recorderServe(h, postRequest("/", "x")).Code]++
	}
	if codes[503] != 2 || codes[200] != 2 {
		t.Errorf("POST statuses %v, want two 503 and two 200", codes)
	}
	// An upstream answering 503 is not taken out of rotation.
	if h.pool.ups[0].downUntil.Load() != 0 {
		t.Error("503 counted as a failure")
	}
}

func TestLast503PassedThrough(t *testing.T) {
	busy := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{busy.URL}}, Options{})
	w := serve(h, "GET", "/", "", nil)
	if w.Code != 503 || w.Header().Get("Retry-After") != "7" || body(t, w) != "busy" {
		t.Errorf("got %d %v %q, want the upstream's 503", w.Code, w.Header(), w.Body)
	}
}

func TestRetriesBounded(t *testing.T) {
	var total atomic.Int64
	var ups []string
	var hits []*atomic.Int64
	for range 4 {
		a, n := refusing(t)
		ups = append(ups, a)
		hits = append(hits, n)
	}
	count := func() int64 {
		var s int64
		for _, n := range hits {
			s += n.Load()
		}
		return s - total.Load()
	}
	cases := []struct {
		retries int
		want    int64
	}{{1, 2}, {0, 4}, {-1, 1}, {10, 4}}
	for _, c := range cases {
		h := newHandler(t, config.Proxy{Upstreams: ups, Retries: c.retries, FailTimeout: ms(1)}, Options{})
		time.Sleep(2 * time.Millisecond)
		serve(h, "GET", "/", "", nil)
		if got := count(); got != c.want {
			t.Errorf("retries=%d: %d attempts, want %d", c.retries, got, c.want)
		}
		total.Add(count())
	}
}

func TestRetryTimeoutBounds(t *testing.T) {
	var slowHits atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		time.Sleep(150 * time.Millisecond)
		http.Error(w, "slow 502", http.StatusBadGateway)
	})
	var ups []string
	for range 5 {
		ups = append(ups, startUpstream(t, slow).URL)
	}
	h := newHandler(t, config.Proxy{Upstreams: ups, RetryTimeout: ms(200)}, Options{})
	start := time.Now()
	w := serve(h, "GET", "/", "", nil)
	if w.Code != 502 {
		t.Errorf("status %d, want 502", w.Code)
	}
	// Attempts start at 0, 150ms; the third would start past 200ms.
	if n := slowHits.Load(); n != 2 {
		t.Errorf("%d attempts within retry_timeout 200ms, want 2", n)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// TestKillUpstreamUnderLoad: one of three upstreams crashes during a
// steady load of GETs; no client request may fail.
func TestKillUpstreamUnderLoad(t *testing.T) {
	var ups []*testUpstream
	var urls []string
	for _, n := range []string{"a", "b", "c"} {
		u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond) // keep requests in flight when it dies
			io.WriteString(w, n)
		}))
		ups = append(ups, u)
		urls = append(urls, u.URL)
	}
	h := newHandler(t, config.Proxy{Upstreams: urls}, Options{})
	fe := front(t, h)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Get(fe.URL + "/")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	before := ok.Load()
	ups[1].Kill()
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed (first: %v)", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if before == 0 || ok.Load() <= before {
		t.Errorf("no progress: %d before the kill, %d in all", before, ok.Load())
	}
	t.Logf("%d requests, upstream b killed after %d", ok.Load(), before)
}

// TestClientGoneIsNotUpstreamFailure: a client that hangs up while the
// upstream works must not take the upstream out of rotation, nor be retried.
func TestClientGoneIsNotUpstreamFailure(t *testing.T) {
	var hits atomic.Int64
	slow := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	other := startUpstream(t, named("other"))
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{Upstreams: []string{slow.URL, other.URL}}, Options{Logger: log})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := httptestRequest("GET", "/", "", nil).WithContext(ctx)
	w := recorderServe(h, r)
	if w.Code != 499 {
		t.Errorf("status %d, want 499 (client closed request)", w.Code)
	}
	if hits.Load() != 1 || other.reqs.Load() != 0 {
		t.Errorf("retried after the client left: slow=%d other=%d", hits.Load(), other.reqs.Load())
	}
	if h.pool.ups[0].downUntil.Load() != 0 || strings.Contains(logs.String(), "upstream down") {
		t.Errorf("upstream marked down because a client left:\n%s", logs)
	}
}

// TestClientBodyErrorIsNotUpstreamFailure: an upload cut by the server's
// body limit is 413, is not retried, and does not mark the upstream down.
func TestClientBodyErrorIsNotUpstreamFailure(t *testing.T) {
	reader := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok %d %v", n, err)
	})
	up, other := startUpstream(t, reader), startUpstream(t, reader)
	log, logs := testLogger()
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL, other.URL}, Balance: "least_conn"}, Options{Logger: log})
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20) // what the server does for max_body_size
		h.ServeHTTP(w, r)
	})
	fe := front(t, limited)
	for range 2 {
		req, _ := http.NewRequest("PUT", fe.URL+"/", &zeros{8 << 20})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// The server may close before the client finished sending.
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d %q, want 413\n%s", resp.StatusCode, b, logs)
		}
	}
	for _, u := range h.pool.ups {
		if u.downUntil.Load() != 0 {
			t.Errorf("upstream %s marked down by a client's oversized body", u.addr)
		}
	}
	if strings.Contains(logs.String(), "upstream down") || strings.Contains(logs.String(), "proxy retry") {
		t.Errorf("log:\n%s", logs)
	}
}
