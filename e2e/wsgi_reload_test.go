package e2e

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const reloadApp = `import os, time
time.sleep(0.3)  # a slow import: a cold worker would show
def application(environ, start_response):
    body = ("pid %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// Ten reloads (SIGHUP) while clients hammer a WSGI route: not one request
// fails, and each new pool's workers are ready before the old pool stops
// (from portico's own log: "workers ready" of the new pool comes before
// "workers stopped" of the old one).
func TestWSGIReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("ten reloads under load")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app.py": reloadApp})
	p := startConfig(t, dir, `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/app/"
  wsgi = { app = "app:application", workers = 2, python = "/usr/bin/python3" }
`, 1)
	url := p.URL("/app/x")
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 10 * time.Second}
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr == nil && resp.StatusCode == 200 && strings.HasPrefix(string(b), "pid ") {
						ok.Add(1)
						continue
					}
					err = &statusErr{resp.StatusCode, string(b), rerr}
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		})
	}
	readyCount := func() int { return strings.Count(p.Stderr.String(), "wsgi: workers ready") }
	for i := range 10 {
		before := ok.Load()
		p.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(20 * time.Second)
		for readyCount() < i+2 || strings.Count(p.Stderr.String(), "config reloaded") < i+1 {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("reload %d not done in 20s:\n%s", i+1, p.Stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Some traffic between reloads.
		for ok.Load() < before+20 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed over 10 reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, none failed, over 10 reloads", ok.Load())
	// Wait for the last old pool to stop, then check the order in the log.
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.Stderr.String(), "wsgi: workers stopped") < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	up := 0
	for _, line := range strings.Split(p.Stderr.String(), "\n") {
		switch {
		case strings.Contains(line, "wsgi: workers ready"):
			up++
		case strings.Contains(line, "wsgi: workers stopped"):
			up--
			if up < 1 {
				t.Errorf("a pool stopped while no other was ready:\n%s", p.Stderr)
			}
		}
	}
	if up != 1 {
		t.Errorf("%d pools up at the end, want 1:\n%s", up, p.Stderr)
	}
}

type statusErr struct {
	code int
	body string
	err  error
}

func (e *statusErr) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return "status " + http.StatusText(e.code) + ": " + e.body
}
