package proxy

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"portico/internal/config"
)

func TestWebSocketEcho(t *testing.T) {
	var sawXFF atomic.Value
	up := startUpstream(t, websocket.Handler(func(ws *websocket.Conn) {
		sawXFF.Store(ws.Request().Header.Get("X-Forwarded-For"))
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(ws, msg); err != nil {
				return
			}
		}
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, Balance: "least_conn"}, Options{})
	fe := front(t, h)
	wsURL := "ws" + strings.TrimPrefix(fe.URL, "http") + "/echo"
	ws, err := websocket.Dial(wsURL, "", fe.URL)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"hello", "portico", strings.Repeat("x", 100_000)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Errorf("echo: got %d bytes, want %d", len(got), len(msg))
		}
	}
	if v, _ := sawXFF.Load().(string); v != "127.0.0.1" {
		t.Errorf("upgrade request X-Forwarded-For %q", v)
	}
	if n := h.pool.ups[0].active.Load(); n != 1 {
		t.Errorf("open websocket: %d in flight, want 1", n)
	}
	ws.Close()
	// The upgraded connection counts as in flight until it closes.
	waitFor(t, 3*time.Second, "in-flight count back to 0", func() bool { return h.pool.ups[0].active.Load() == 0 })
}

// TestSSEFirstEventPrompt: an event-stream's first event reaches the client
// while the upstream is still writing (no buffering until the end).
func TestSSEFirstEventPrompt(t *testing.T) {
	done := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-done:
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
		io.WriteString(w, "data: last\n\n")
	}))
	defer close(done)
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	start := time.Now()
	resp, err := http.Get(fe.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("first event after %v, want it at once", d)
	}
	if line != "data: first\n" {
		t.Errorf("got %q", line)
	}
}

// TestChunkedStreamFlushes: a response of unknown length (a long poll, a
// log tail) is flushed as it comes, whatever its type.
func TestChunkedStreamFlushes(t *testing.T) {
	done := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "{\"n\":1}\n")
		w.(http.Flusher).Flush()
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	defer close(done)
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	resp, err := http.Get(fe.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(resp.Body).ReadString('\n')
		got <- l
	}()
	select {
	case l := <-got:
		if l != "{\"n\":1}\n" {
			t.Errorf("got %q", l)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("first line not flushed")
	}
}

// heapWatch samples HeapInuse until stopped and returns the peak.
func heapWatch() (stop func() uint64) {
	var peak atomic.Uint64
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(quit); wg.Wait(); return peak.Load() }
}

type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// TestLargeBodiesStreamFlatMemory pushes 200 MB up and 200 MB down through
// the proxy; the heap must stay small (bodies are streamed, not buffered).
// PORTICO_STREAM_MB=1024 makes it a 1 GB manual run.
func TestLargeBodiesStreamFlatMemory(t *testing.T) {
	size := int64(200 << 20)
	if mb, err := strconv.Atoi(os.Getenv("PORTICO_STREAM_MB")); err == nil && mb > 0 {
		size = int64(mb) << 20
	}
	if testing.Short() {
		t.Skip("short")
	}
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, &zeros{size})
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapInuse
	stop := heapWatch()
	start := time.Now()

	req, _ := http.NewRequest("POST", fe.URL+"/up", &zeros{size}) // chunked: length unknown
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d <nil>", size); string(b) != want {
		t.Errorf("upload: upstream got %q, want %q", b, want)
	}

	resp, err = http.Get(fe.URL + "/down")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != size || err != nil {
		t.Errorf("download: %d bytes, %v; want %d", n, err, size)
	}
	peak := stop()
	d := time.Since(start)
	t.Logf("2 x %d MB in %v", size>>20, d)
	t.Logf("peak heap in use %d KiB above %d KiB", (peak-base)>>10, base>>10)
	if peak > base+24<<20 {
		t.Errorf("heap grew by %d MiB while streaming", (peak-base)>>20)
	}
	if d > time.Duration(size>>20)*150*time.Millisecond {
		t.Errorf("took %v", d)
	}
}

// TestUpstreamKeepAlive: sequential requests reuse one upstream connection.
func TestUpstreamKeepAlive(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(make([]byte, 3000))
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	for i := range 100 {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = http.Get(fe.URL + "/")
		} else {
			resp, err = http.Post(fe.URL+"/", "text/plain", strings.NewReader("body"))
		}
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := up.conns.Load(); n > 2 {
		t.Errorf("100 sequential requests opened %d upstream connections, want 1-2", n)
	}
}

// TestKeepAliveUnderConcurrency: with 64 clients at once the pool keeps
// its connections (the Transport default of 2 idle per host would churn).
func TestKeepAliveUnderConcurrency(t *testing.T) {
	up := startUpstream(t, named("x"))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				resp, err := client.Get(fe.URL + "/")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := up.conns.Load(); n > 80 {
		t.Errorf("1280 requests from 64 clients opened %d upstream connections, want about 64", n)
	}
}

func TestRequestBodyIntact(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read all before answering: Go's HTTP/1 server is not full duplex.
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	resp, err := http.Post(fe.URL+"/", "application/octet-stream", strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != string(payload) {
		t.Errorf("body changed: %d bytes back of %d", len(got), len(payload))
	}
}

// TestHTTP2Front: the handler behind an HTTP/2 TLS listener: forwarding
// headers say https, SSE still flushes, bodies pass both ways.
func TestHTTP2Front(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %d", r.Proto, r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Via"), len(b))
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := httptest.NewUnstartedServer(h)
	fe.EnableHTTP2 = true
	fe.StartTLS()
	defer fe.Close()
	c := fe.Client()
	resp, err := c.Post(fe.URL+"/", "text/plain", strings.NewReader("12345"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("front spoke %s, want HTTP/2", resp.Proto)
	}
	if want := "HTTP/1.1 https 2.0 portico 5"; string(b) != want {
		t.Errorf("upstream saw %q, want %q", b, want)
	}
	start := time.Now()
	resp, err = c.Get(fe.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "data: first\n" || time.Since(start) > time.Second {
		t.Errorf("SSE over HTTP/2: %q after %v", line, time.Since(start))
	}
}

// TestExpectContinue: a client's Expect: 100-continue upload goes through
// without waiting for a timeout, and a refusal (401 before the body) is
// passed back without the body being sent.
func TestExpectContinue(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deny" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d", len(b))
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	defer c.CloseIdleConnections()
	for _, tc := range []struct {
		path string
		code int
		body string
	}{{"/ok", 200, "got 100000"}, {"/deny", 401, "no\n"}} {
		req, _ := http.NewRequest("POST", fe.URL+tc.path, strings.NewReader(strings.Repeat("x", 100000)))
		req.Header.Set("Expect", "100-continue")
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(b) != tc.body {
			t.Errorf("%s: got %d %q, want %d %q", tc.path, resp.StatusCode, b, tc.code, tc.body)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("%s took %v: waited for a timeout", tc.path, d)
		}
	}
}

// TestEarlyHints: 1xx informational responses (103 Early Hints) are passed
// to the client before the final response.
func TestEarlyHints(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "page")
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	conn, err := net.Dial("tcp", fe.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	all, _ := io.ReadAll(conn)
	s := string(all)
	i103, i200 := strings.Index(s, "HTTP/1.1 103"), strings.Index(s, "HTTP/1.1 200")
	if i103 < 0 || i200 < i103 || !strings.Contains(s[i103:i200], "Link: </style.css>") {
		t.Errorf("no 103 with Link before the 200:\n%s", s)
	}
}
