package wsgi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"portico/internal/config"
)

// PEP 3333 environ for a plain GET, and the header rules (httpoxy,
// aliasing, private headers, SERVER_PORT from the listener, not Host).
func TestEnviron(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	req, _ := http.NewRequest("GET", tp.srv.URL+"/app/x/y?a=1&b=%20two", nil)
	req.Host = "example.test:9999"
	req.Header.Set("User-Agent", "tester")
	req.Header.Set("Proxy", "http://evil.test:1")
	req.Header.Set("X-Foo", "dash")
	req.Header["X_Foo"] = []string{"underscore"}
	req.Header["X_foo"] = []string{"underscore2"}
	req.Header.Set("X-Portico-Remote-Addr", "6.6.6.6")
	req.Header.Set("X-Portico-Script-Name", "/evil")
	req.Header.Set("X-Portico-Scheme", "https")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "hop-by-hop")
	env := tp.env(t, req)

	_, port, _ := net.SplitHostPort(tp.srv.Listener.Addr().String())
	want := map[string]any{
		"REQUEST_METHOD":    "GET",
		"SCRIPT_NAME":       "/app",
		"PATH_INFO":         "/x/y",
		"QUERY_STRING":      "a=1&b=%20two",
		"SERVER_NAME":       "example.test",
		"SERVER_PORT":       port,
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REMOTE_ADDR":       "127.0.0.1",
		"HTTP_HOST":         "example.test:9999",
		"HTTP_USER_AGENT":   "tester",
		"HTTP_X_FOO":        "dash",
		"HTTP_X_MULTI":      "one, two",
		"HTTP_COOKIE":       "a=1; b=2",
		"REQUEST_URI":       "/app/x/y?a=1&b=%20two",
		"wsgi.url_scheme":   "http",
		"wsgi.multithread":  false,
		"wsgi.multiprocess": true,
		"wsgi.run_once":     false,
	}
	for k, v := range want {
		if got := env[k]; got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if v, ok := env["wsgi.version"].([]any); !ok || len(v) != 2 || v[0] != 1.0 || v[1] != 0.0 {
		t.Errorf("wsgi.version = %v, want [1 0]", env["wsgi.version"])
	}
	for _, k := range []string{"HTTP_PROXY", "CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_X_HOP", "HTTP_CONNECTION", "HTTPS"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %#v, want unset", k, v)
		}
	}
	for k := range env {
		if strings.Contains(k, "PORTICO") {
			t.Errorf("private header leaked into environ: %s=%v", k, env[k])
		}
	}
	if _, ok := env["REMOTE_PORT"]; !ok {
		t.Error("REMOTE_PORT missing")
	}
}

// SCRIPT_NAME / PATH_INFO split, PEP 3333 latin-1 decoding.
func TestPathSplit(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	cases := []struct{ path, script, info, query string }{
		{"/app/x/y", "/app", "/x/y", ""},
		{"/app", "/app", "", ""},
		{"/app/", "/app", "/", ""},
		{"/app/caf%C3%A9", "/app", "/caf\u00c3\u00a9", ""},
		{"/app/a%2Fb", "/app", "/a/b", ""},
		{"/app/a%3Fb?c=d", "/app", "/a?b", "c=d"},
		{"/app/a%00b", "/app", "/a\x00b", ""}, // PATH_INFO alone may hold a NUL
		{"/%61pp/z", "/app", "/z", ""},
		{"/application", "", "/application", ""},
		{"/other/x", "", "/other/x", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", tp.srv.URL+"/", nil)
		req.URL.Opaque = c.path // sent as is
		if i := strings.IndexByte(c.path, '?'); i >= 0 {
			req.URL.Opaque, req.URL.RawQuery = c.path[:i], c.path[i+1:]
		}
		env := tp.env(t, req)
		if env["SCRIPT_NAME"] != c.script || env["PATH_INFO"] != c.info || env["QUERY_STRING"] != c.query {
			t.Errorf("%s: SCRIPT_NAME %q PATH_INFO %q QUERY_STRING %q, want %q %q %q", c.path,
				env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"], c.script, c.info, c.query)
		}
	}
}

// A route at "/" gives SCRIPT_NAME "" and the whole path, as sent.
func TestPathSplitRoot(t *testing.T) {
	t.Parallel()
	tp := newPoolAt(t, config.WSGI{App: "envapp:application", Dir: testdata(t, "app"), Workers: 1, Python: python(t)}, "/")
	for _, path := range []string{"/x", "//x", "/app/x"} {
		// Raw: Go's client would send "//x" in absolute form.
		c, err := net.Dial("tcp", tp.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		var env map[string]any
		json.NewDecoder(resp.Body).Decode(&env)
		c.Close()
		if env["SCRIPT_NAME"] != "" || env["PATH_INFO"] != path {
			t.Errorf("%s: SCRIPT_NAME %q PATH_INFO %q, want \"\" and %q", path, env["SCRIPT_NAME"], env["PATH_INFO"], path)
		}
	}
}

func TestPostBody(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 2, 10*time.Second)
	for _, n := range []int{1, 1000, memBody, memBody + 1, 3 << 20} {
		body := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		resp, got := do(t, mustReq(t, "POST", tp.srv.URL+"/app/echo", bytes.NewReader(body)))
		if resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Errorf("echo %d bytes: status %d, got %d bytes back", n, resp.StatusCode, len(got))
		}
	}
	// A chunked upload (no Content-Length) gets CONTENT_LENGTH all the same.
	req := mustReq(t, "POST", tp.srv.URL+"/app/env", io.MultiReader(strings.NewReader("a=1&"), strings.NewReader("b=2")))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	env := tp.env(t, req)
	if env["CONTENT_LENGTH"] != "7" || env["CONTENT_TYPE"] != "application/x-www-form-urlencoded" {
		t.Errorf("CONTENT_LENGTH %v CONTENT_TYPE %v, want 7 and the form type", env["CONTENT_LENGTH"], env["CONTENT_TYPE"])
	}
	env = tp.env(t, mustReq(t, "POST", tp.srv.URL+"/app/env", nil))
	if env["CONTENT_LENGTH"] != "0" {
		t.Errorf("empty POST: CONTENT_LENGTH %v, want \"0\"", env["CONTENT_LENGTH"])
	}
}

func mustReq(t testing.TB, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// An app that does not read the body still gets its response through
// intact (the adapter drains the rest before closing: no reset).
func TestUnreadBody(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	body := bytes.Repeat([]byte("y"), 2<<20)
	for i := range 10 {
		resp, b := do(t, mustReq(t, "POST", tp.srv.URL+"/app/pid", bytes.NewReader(body)))
		var m struct{ Pid int }
		if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil || m.Pid == 0 {
			t.Fatalf("POST %d: status %d body %q", i, resp.StatusCode, b)
		}
	}
	// The app answers 16 MiB before it would read the body: the body is
	// written while the answer is read, neither waits for the other.
	for _, q := range []string{"cl", "chunked"} {
		resp, b := do(t, mustReq(t, "POST", tp.srv.URL+"/app/big?"+q, bytes.NewReader(body)))
		if resp.StatusCode != 200 || len(b) != 16<<20 {
			t.Fatalf("POST /big?%s: status %d, %d bytes", q, resp.StatusCode, len(b))
		}
	}
	if _, b := tp.get(t, "/app/pid"); !bytes.Contains(b, []byte("pid")) {
		t.Fatalf("GET after: %q", b)
	}
}

// HEAD stops a streaming app after its headers.
func TestHeadStream(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	start := time.Now()
	resp, b := do(t, mustReq(t, "HEAD", tp.srv.URL+"/app/stream?5", nil))
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Errorf("HEAD: status %d, %d body bytes", resp.StatusCode, len(b))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("HEAD of a 5s stream took %s", d)
	}
}

// The server's body limit (http.MaxBytesReader) gives 413, and the worker
// is never taken.
func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 100)
		tp.Pool.ServeHTTP(w, r)
	}))
	defer limited.Close()
	req := mustReq(t, "POST", limited.URL+"/app/echo", strings.NewReader(strings.Repeat("x", 1000)))
	req.ContentLength = -1
	resp, _ := do(t, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

// A slow client sending its body must not hold the only worker.
func TestSlowClientDoesNotHoldWorker(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	pr, pw := io.Pipe()
	slowDone := make(chan int, 1)
	go func() {
		req := mustReq(t, "POST", tp.srv.URL+"/app/echo", pr)
		req.ContentLength = -1
		resp, err := testClient.Do(req)
		if err != nil {
			slowDone <- 0
			return
		}
		resp.Body.Close()
		slowDone <- resp.StatusCode
	}()
	pw.Write([]byte("first part"))
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	for range 3 {
		tp.pid(t)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("3 requests took %s while a slow upload was in progress", d)
	}
	pw.Write([]byte(" and the rest"))
	pw.Close()
	if code := <-slowDone; code != 200 {
		t.Errorf("slow upload: status %d", code)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	py := python(t)
	cases := []struct {
		name, app, dir, python string
		want                   []string
	}{
		{"missing module", "nosuchmodule:application", "app", py,
			[]string{`wsgi app "nosuchmodule:application": ModuleNotFoundError: No module named 'nosuchmodule'`}},
		{"syntax error", "syntaxerr:application", "broken", py,
			[]string{`wsgi app "syntaxerr:application": SyntaxError:`, "syntaxerr.py", "line 1"}},
		{"missing callable", "envapp:nope", "app", py,
			[]string{`wsgi app "envapp:nope": AttributeError: module 'envapp' has no attribute 'nope'`}},
		{"not callable", "notcallable:application", "broken", py,
			[]string{`TypeError: notcallable:application is not callable (it is int)`}},
		{"exits on import", "exits:application", "broken", py,
			[]string{`wsgi app "exits:application": worker exit status 7 before it was ready`}},
		{"bad spec", "envapp", "app", py, []string{`want "module:callable"`}},
		{"no python", "envapp:application", "app", "/nonexistent/python3",
			[]string{`python "/nonexistent/python3"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			p, err := New(config.WSGI{App: c.app, Dir: testdata(t, c.dir), Workers: 3, Python: c.python,
				Timeout: config.Duration(5 * time.Second)}, Options{})
			if err == nil {
				p.Close(context.Background())
				t.Fatal("New succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("New took %s to fail", d)
			}
		})
	}
}

// Check imports the app in a throwaway process: the same errors as New,
// and nothing left running.
func TestCheck(t *testing.T) {
	t.Parallel()
	py := python(t)
	if err := Check(config.WSGI{App: "envapp:application", Dir: testdata(t, "app"), Python: py}, Options{}); err != nil {
		t.Errorf("Check: %v", err)
	}
	err := Check(config.WSGI{App: "syntaxerr:application", Dir: testdata(t, "broken"), Python: py}, Options{})
	if err == nil || !strings.Contains(err.Error(), `wsgi app "syntaxerr:application": SyntaxError`) {
		t.Errorf("Check of a syntax error: %v", err)
	}
	err = Check(config.WSGI{App: "nosuch:app", Dir: testdata(t, "app"), Python: py}, Options{})
	if err == nil || !strings.Contains(err.Error(), "No module named 'nosuch'") {
		t.Errorf("Check of a missing module: %v", err)
	}
}

// A frozen import fails New within startTimeout, not never.
func TestStartTimeout(t *testing.T) {
	old := startTimeout
	startTimeout = 500 * time.Millisecond
	defer func() { startTimeout = old }()
	t.Setenv("ENVAPP_IMPORT_SLEEP", "30")
	start := time.Now()
	_, err := New(config.WSGI{App: "envapp:application", Dir: testdata(t, "app"), Workers: 2, Python: python(t)}, Options{})
	if err == nil || !strings.Contains(err.Error(), "not ready after 500ms") {
		t.Errorf("err = %v, want a start timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New took %s", d)
	}
}

// Workers start in parallel: 4 imports of 2s each take about 2s, not 8s.
// (Wide margins: a loaded machine adds seconds of Python start-up.)
func TestParallelStart(t *testing.T) {
	t.Setenv("ENVAPP_IMPORT_SLEEP", "2")
	start := time.Now()
	p, err := New(config.WSGI{App: "envapp:application", Dir: testdata(t, "app"), Workers: 4, Python: python(t)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	p.Close(context.Background())
	if d > 6*time.Second {
		t.Errorf("4 workers took %s to start; serial start would be 8s+", d)
	}
}

func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 2, 10*time.Second)
	before := tp.pids()
	if len(before) != 2 {
		t.Fatalf("pids %v, want 2", before)
	}
	victim := before[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Requests keep succeeding meanwhile, none of them on the dead worker.
	for i := range 20 {
		resp, b := tp.get(t, "/app/pid")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d after kill: status %d %q", i, resp.StatusCode, b)
		}
	}
	waitFor(t, 10*time.Second, "a replacement worker", func() bool {
		now := tp.pids()
		return len(now) == 2 && !contains2(now, victim)
	})
	waitFor(t, 5*time.Second, "the restart in the log", func() bool {
		for _, line := range strings.Split(tp.logs.String(), "\n") {
			if strings.Contains(line, "pid="+strconv.Itoa(victim)) &&
				(strings.Contains(line, "worker died, restarting it") || strings.Contains(line, "worker killed, replacing it")) {
				return true
			}
		}
		return false
	})
	if st, _, _, ok := procStat(victim); ok && st == 'Z' {
		t.Errorf("killed worker %d left a zombie", victim)
	}
}

// A request past Timeout gets 504; the frozen worker (and its group) is
// killed and replaced, and the pool keeps serving.
func TestTimeoutKillsFrozenWorker(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 2, time.Second)
	before := tp.pids()
	start := time.Now()
	resp, _ := tp.get(t, "/app/sleep?30")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Errorf("504 after %s, want about 1s", d)
	}
	for range 5 {
		if resp, b := tp.get(t, "/app/pid"); resp.StatusCode != 200 {
			t.Fatalf("after timeout: status %d %q", resp.StatusCode, b)
		}
	}
	waitFor(t, 10*time.Second, "the frozen worker to be replaced", func() bool {
		now := tp.pids()
		replaced := 0
		for _, p := range before {
			if !contains2(now, p) {
				replaced++
			}
		}
		return len(now) == 2 && replaced == 1
	})
	tp.logs.waitLog(t, 5*time.Second, "request timed out; worker killed and replaced", "worker killed, replacing it", "wsgi: worker started")
	if st := tp.Stats(); st.Timeouts != 1 || st.Restarts != 1 || st.Workers != 2 || st.Alive != 2 {
		t.Errorf("Stats() = %+v, want 1 timeout, 1 restart, 2 of 2 alive", st)
	}
}

// Sequential requests go round the idle workers.
func TestLoadSpread(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 3, 10*time.Second)
	seen := map[int]int{}
	for range 9 {
		seen[tp.pid(t)]++
	}
	if len(seen) != 3 {
		t.Errorf("pids seen %v, want all 3 workers", seen)
	}
}

// 3 workers serve 3 requests of 1s each at the same time (about 1s, where
// one worker would take 3s).
func TestConcurrency(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 3, 10*time.Second)
	var wg sync.WaitGroup
	pids := make([]int, 3)
	start := time.Now()
	for i := range 3 {
		wg.Go(func() {
			resp, b := tp.get(t, "/app/sleep?1")
			var m struct{ Pid int }
			json.Unmarshal(b, &m)
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			pids[i] = m.Pid
		})
	}
	wg.Wait()
	d := time.Since(start)
	if d > 2200*time.Millisecond {
		t.Errorf("3 concurrent 1s requests took %s, want about 1s", d)
	}
	if pids[0] == pids[1] || pids[1] == pids[2] || pids[0] == pids[2] {
		t.Errorf("pids %v, want 3 different workers", pids)
	}
}

// With every worker busy, a request waits at most queueWait, then 503.
func TestQueueWait(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	tp.queueWait.Store(int64(200 * time.Millisecond))
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		tp.get(t, "/app/sleep?1.5")
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	resp, _ := tp.get(t, "/app/pid")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("503 after %s, want about 200ms", d)
	}
	<-busy
	// A request that waits less than queueWait is served.
	tp.queueWait.Store(int64(5 * time.Second))
	go testClient.Get(tp.srv.URL + "/app/sleep?0.3")
	time.Sleep(50 * time.Millisecond)
	if resp, _ := tp.get(t, "/app/pid"); resp.StatusCode != 200 {
		t.Errorf("queued request: status %d", resp.StatusCode)
	}
}

// A client that reads slowly (here: not at all) does not hold the sync
// worker: the response is buffered and the worker serves the next request.
func TestSlowReaderDoesNotHoldWorker(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	for _, mode := range []string{"cl", "chunked"} {
		c, err := net.Dial("tcp", tp.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /app/big?"+mode+" HTTP/1.1\r\nHost: h\r\n\r\n")
		time.Sleep(300 * time.Millisecond) // the app writes its 16 MiB meanwhile
		start := time.Now()
		if resp, b := tp.get(t, "/app/pid"); resp.StatusCode != 200 {
			t.Errorf("%s: status %d %q", mode, resp.StatusCode, b)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: next request took %s behind a stalled reader", mode, d)
		}
		// The stalled client still gets the whole body once it reads.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != 256<<16 {
			t.Errorf("%s: slow reader got %d bytes, %v; want %d", mode, n, err, 256<<16)
		}
		c.Close()
	}
}

// A response that stops making progress for Timeout is cut (the client
// sees an error, not a short body taken for whole) and the worker replaced.
func TestStalledResponse(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, time.Second)
	pid := tp.pid(t)
	// Streamed: the first chunk arrives, then the connection is cut.
	resp, err := testClient.Get(tp.srv.URL + "/app/stream?30")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(b) != "first\n" {
		t.Errorf("stalled stream: body %q, err %v; want the first chunk, then an error", b, err)
	}
	// The stalled worker's replacement may take longer than the queue
	// wait (1s) to start on a loaded machine: wait for it.
	waitFor(t, 20*time.Second, "the stalled worker's replacement", func() bool {
		now := tp.pids()
		return len(now) == 1 && now[0] != pid && tp.Stats().Idle == 1
	})
	pid = tp.pids()[0]
	// Sized but short and stalled: nothing was sent yet, so a 504.
	if resp, b := tp.get(t, "/app/partial"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("stalled sized response: status %d %q, want 504", resp.StatusCode, b)
	}
	tp.logs.waitLog(t, 5*time.Second, "response stalled past timeout")
	waitFor(t, 20*time.Second, "a replacement worker", func() bool {
		now := tp.pids()
		return len(now) == 1 && now[0] != pid && tp.Stats().Idle == 1
	})
	if resp, _ := tp.get(t, "/app/pid"); resp.StatusCode != 200 {
		t.Errorf("after stalls: status %d", resp.StatusCode)
	}
}

// A generator's first chunk reaches the client before the app finishes.
func TestStreaming(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	start := time.Now()
	resp, err := testClient.Get(tp.srv.URL + "/app/stream?3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("first chunk after %s; the app pauses 3s before its second", d)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
	if resp.ContentLength != -1 {
		t.Errorf("ContentLength %d, want -1 (streamed)", resp.ContentLength)
	}
	tp.logs.waitLog(t, 3*time.Second, "stream closed") // iterable's close() called
}

// A client that leaves mid-stream makes the app's iterable close, and the
// worker is free again.
func TestClientGoneMidStream(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	pid := tp.pid(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", tp.srv.URL+"/app/stream?1", nil)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "first\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	tp.logs.waitLog(t, 5*time.Second, "stream closed")
	if got := tp.pid(t); got != pid {
		t.Errorf("worker pid %d, want %d still serving", got, pid)
	}
}

// An exception is a 500 and a traceback in the log; the worker lives on.
func TestAppException(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	pid := tp.pid(t)
	resp, b := tp.get(t, "/app/raise")
	if resp.StatusCode != 500 || !strings.HasPrefix(string(b), "500 Internal Server Error") {
		t.Errorf("status %d body %q, want portico's 500", resp.StatusCode, b)
	}
	if resp.Header.Get("X-Portico-Error") != "" {
		t.Error("private response header leaked")
	}
	tp.logs.waitLog(t, 3*time.Second, "RuntimeError: boom from envapp", "worker=1", "pid="+strconv.Itoa(pid))
	// The whole traceback is one log record (issue 15), not one per line.
	var records []string
	for _, line := range strings.Split(tp.logs.String(), "\n") {
		if strings.Contains(line, "Traceback") || strings.Contains(line, "RuntimeError") || strings.Contains(line, `File \"`) {
			records = append(records, line)
		}
	}
	if len(records) != 1 || !strings.Contains(records[0], `msg="wsgi app error"`) ||
		!strings.Contains(records[0], `traceback="Traceback (most recent call last):\n`) {
		t.Errorf("the traceback is %d records, want 1 wsgi app error:\n%s", len(records), strings.Join(records, "\n"))
	}
	if got := tp.pid(t); got != pid {
		t.Errorf("pid %d after exception, want %d (same worker)", got, pid)
	}
}

func TestResponses(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	resp, b := tp.get(t, "/app/write")
	if resp.StatusCode != 200 || string(b) != "via write; then iterable" {
		t.Errorf("write(): status %d body %q", resp.StatusCode, b)
	}
	resp, b = tp.get(t, "/app/exc-info")
	if resp.StatusCode != 418 || string(b) != "short and stout" {
		t.Errorf("exc_info: status %d body %q, want 418", resp.StatusCode, b)
	}
	resp, b = tp.get(t, "/app/pid")
	if resp.ContentLength <= 0 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Length %d Content-Type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Connection") != "" || resp.Header.Get("Server") != "" {
		t.Errorf("worker's Connection/Server headers leaked: %v", resp.Header)
	}
	resp, b = do(t, mustReq(t, "HEAD", tp.srv.URL+"/app/pid", nil))
	if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength <= 0 {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %d", resp.StatusCode, len(b), resp.ContentLength)
	}
	resp, b = tp.get(t, "/app/badheader")
	if resp.StatusCode != 500 || strings.Contains(string(b), "never sent") {
		t.Errorf("invalid header name: status %d body %q, want 500", resp.StatusCode, b)
	}
	resp, b = tp.get(t, "/app/nocontent")
	if resp.StatusCode != 204 || len(b) != 0 || resp.Header.Get("Content-Length") != "" {
		t.Errorf("204: status %d body %q Content-Length %q", resp.StatusCode, b, resp.Header.Get("Content-Length"))
	}
	resp, _ = do(t, mustReq(t, "PROPFIND", tp.srv.URL+"/app/pid", nil))
	if resp.StatusCode != 200 {
		t.Errorf("PROPFIND: status %d", resp.StatusCode)
	}
}

// Worker output reaches the log, one record per line, tagged.
func TestWorkerOutputLogged(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	pid := tp.pid(t)
	tp.get(t, "/app/log")
	tp.logs.waitLog(t, 3*time.Second, "wsgi worker stderr", "a line on stderr from the app", "worker=1", "pid="+strconv.Itoa(pid))
	tp.logs.waitLog(t, 3*time.Second, `msg="wsgi worker stdout" worker=1 pid=`+strconv.Itoa(pid)+` line="envapp imported"`)
}

// A worker that exits during a POST: 502 (not retried: the app may have
// acted on it), then a new worker serves.
func TestWorkerExitsDuringRequest(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	resp, _ := do(t, mustReq(t, "POST", tp.srv.URL+"/app/exit", strings.NewReader("x")))
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	tp.queueWait.Store(int64(10 * time.Second))
	if resp, b := tp.get(t, "/app/pid"); resp.StatusCode != 200 {
		t.Errorf("after exit: status %d %q", resp.StatusCode, b)
	}
}

// HTTPS and HTTP/2 reach the environ as such.
func TestHTTP2TLS(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, 10*time.Second)
	srv := httptest.NewUnstartedServer(tp.Pool)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := srv.Client()
	c.Timeout = 10 * time.Second
	resp, err := c.Get(srv.URL + "/app/env")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]any
	json.NewDecoder(resp.Body).Decode(&env)
	if env["wsgi.url_scheme"] != "https" || env["HTTPS"] != "on" || env["SERVER_PROTOCOL"] != "HTTP/2.0" {
		t.Errorf("scheme %v HTTPS %v protocol %v, want https on HTTP/2.0",
			env["wsgi.url_scheme"], env["HTTPS"], env["SERVER_PROTOCOL"])
	}
}

// Close finishes the request in flight, then leaves no process behind: no
// worker, nothing the app started in its group, no zombie.
func TestCloseLeavesNoProcess(t *testing.T) {
	t.Parallel()
	logs := &logBuf{}
	p, err := New(config.WSGI{App: "envapp:application", Dir: testdata(t, "app"), Workers: 3, Python: python(t),
		Timeout: config.Duration(10 * time.Second)}, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Prefix: "/app"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	tp := &testPool{Pool: p, srv: srv, logs: logs}
	pids := p.pids()
	if len(pids) != 3 {
		t.Fatalf("pids %v", pids)
	}
	// The app starts a child of its own (same process group).
	_, b := tp.get(t, "/app/spawn")
	var m struct{ Pid, Child int }
	json.Unmarshal(b, &m)
	if m.Child == 0 {
		t.Fatalf("spawn: %s", b)
	}
	slow := make(chan int, 1)
	go func() {
		resp, _ := tp.get(t, "/app/sleep?0.5")
		slow <- resp.StatusCode
	}()
	time.Sleep(150 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if code := <-slow; code != 200 {
		t.Errorf("request in flight during Close: status %d, want 200", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
	// The workers are portico's children: reaped by the time Close returns.
	for _, pid := range pids {
		if st, _, pgid, ok := procStat(pid); ok && (st == 'Z' || pgid == pid) {
			t.Errorf("worker %d still there after Close (state %c)", pid, st)
		}
	}
	// The app's own child was killed with its group; orphaned, it is
	// reaped by init, so give that a moment.
	waitFor(t, 3*time.Second, "the app's child and the worker groups to be gone", func() bool {
		if _, _, pgid, ok := procStat(m.Child); ok && contains2(pids, pgid) {
			return false
		}
		for _, pid := range pids {
			if len(groupMembers(pid)) > 0 {
				return false
			}
		}
		return true
	})
	if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
		t.Errorf("temp folder %s left behind", p.dir)
	}
	// After Close: 503, and Close again is harmless.
	resp, _ := tp.get(t, "/app/pid")
	if resp.StatusCode != 503 {
		t.Errorf("after Close: status %d, want 503", resp.StatusCode)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A worker that ignores SIGTERM is killed when Close's ctx ends.
func TestCloseKillsStubbornWorker(t *testing.T) {
	t.Parallel()
	p, err := New(config.WSGI{App: "envapp:application", Dir: testdata(t, "app"), Workers: 1, Python: python(t)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pids := p.pids()
	// Stop the process: a stopped process does not act on SIGTERM.
	syscall.Kill(pids[0], syscall.SIGSTOP)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	p.Close(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %s with a 300ms context", d)
	}
	if _, _, _, ok := procStat(pids[0]); ok {
		t.Errorf("worker %d survived Close", pids[0])
	}
}

func TestForwardHeaders(t *testing.T) {
	in := http.Header{
		"Proxy":                 {"http://evil:1"},
		"X_forwarded_for":       {"1.2.3.4"},
		"X.dot":                 {"x"},
		"X-Portico-Server-Port": {"1"},
		"x-portico-scheme":      {"https"},
		"Connection":            {"close, X-Drop"},
		"X-Drop":                {"v"},
		"Keep-Alive":            {"300"},
		"Expect":                {"100-continue"},
		"Accept":                {"text/html"},
		"Cookie":                {"a=1", "b=2"},
	}
	out := forwardHeaders(in)
	want := http.Header{"Accept": {"text/html"}, "Cookie": {"a=1", "b=2"}}
	if len(out) != len(want) {
		t.Errorf("got %v, want %v", out, want)
	}
	for k, v := range want {
		if strings.Join(out[k], "|") != strings.Join(v, "|") {
			t.Errorf("%s = %q, want %q", k, out[k], v)
		}
	}
}

// An app that breaks after start (edited with a syntax error, then its
// worker dies): restarts fail and back off, clients get 503 at once rather
// than waiting, and the pool recovers when the app is fixed.
func TestAppBrokenAfterStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n"
	if err := os.WriteFile(dir+"/flaky.py", []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	tp := newPoolAt(t, config.WSGI{App: "flaky:application", Dir: dir, Workers: 1, Python: python(t),
		Timeout: config.Duration(5 * time.Second)}, "")
	if resp, _ := tp.get(t, "/"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	os.RemoveAll(dir + "/__pycache__")
	if err := os.WriteFile(dir+"/flaky.py", []byte("def application(:\n    pass # broken on purpose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(tp.pids()[0], syscall.SIGKILL)
	tp.logs.waitLog(t, 15*time.Second, "worker failed to start", "SyntaxError")
	start := time.Now()
	if resp, _ := tp.get(t, "/"); resp.StatusCode != 503 {
		t.Errorf("with the app broken: status %d, want 503", resp.StatusCode)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("503 took %s; want at once", d)
	}
	os.RemoveAll(dir + "/__pycache__")
	if err := os.WriteFile(dir+"/flaky.py", []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the fixed app to be served", func() bool {
		resp, _ := tp.get(t, "/")
		return resp.StatusCode == 200
	})
}

// When every worker of a new pool fails alike, the log gets one traceback,
// not one per worker.
func TestStartFailureLoggedOnce(t *testing.T) {
	t.Parallel()
	logs := &logBuf{}
	_, err := New(config.WSGI{App: "syntaxerr:application", Dir: testdata(t, "broken"), Workers: 4, Python: python(t)},
		Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err == nil {
		t.Fatal("New succeeded")
	}
	if n := strings.Count(logs.String(), `traceback="Traceback (most recent call last):`); n != 1 {
		t.Errorf("%d tracebacks in the log, want 1:\n%s", n, logs)
	}
	// The traceback is one record (issue 15): no record per frame.
	if n := strings.Count(logs.String(), "\n") - strings.Count(logs.String(), "workers run as root"); n != 1 {
		t.Errorf("%d log records, want 1 (the traceback):\n%s", n, logs)
	}
}

// A worker frozen while idle (here: stopped) is found by the pool's ping
// and replaced before a client's request gets to it.
func TestFrozenIdleWorkerReplaced(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 2, 10*time.Second)
	tp.pingEvery.Store(int64(200 * time.Millisecond))
	victim := tp.pids()[0]
	syscall.Kill(victim, syscall.SIGSTOP)
	defer syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the frozen worker to be replaced", func() bool {
		now := tp.pids()
		return len(now) == 2 && !contains2(now, victim)
	})
	tp.logs.waitLog(t, time.Second, "idle worker does not answer; replacing it", "pid="+strconv.Itoa(victim))
	for range 4 {
		if resp, _ := tp.get(t, "/app/pid"); resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
}
