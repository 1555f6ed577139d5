package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Fault: SIGTERM while slow requests are in flight: proxied requests
// whose upstream takes 2s (net/http's engine) and downloads read at 4 MB/s
// (static files, the fast path's engine). The listener closes at once
// (new connections are refused while the old requests still run), every
// request in flight finishes with its full answer within
// shutdown_timeout, and then portico exits 0.
func TestFaultSIGTERMWithSlowRequestsInFlight(t *testing.T) {
	const (
		proxied         = 16
		downloads       = 4
		inFlight        = proxied + downloads
		downloadSize    = 8 << 20
		upstreamTakes   = 2 * time.Second
		shutdownTimeout = 6 * time.Second
	)
	var arrived atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		time.Sleep(upstreamTakes)
		fmt.Fprintf(w, "slow done %s", r.URL.Path)
	}))
	defer slow.Close()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "public/files"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "public/files/big.bin"), make([]byte, downloadSize), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
shutdown_timeout = %q
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = [%q] }
  [[site.route]]
  path = "/files/"
  static = { root = "public/files" }
`, shutdownTimeout.String(), slow.URL), 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")

	type result struct {
		path       string
		code       int
		body, want string
		err        error
		finished   time.Time
	}
	results := make(chan result, inFlight)
	for i := range proxied {
		go func() {
			path := fmt.Sprintf("/slow/%d", i)
			// One connection per request, as separate clients would have.
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(p.URL(path))
			r := result{path: path, err: err, want: "slow done " + path}
			if err == nil {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				r.code, r.body, r.err = resp.StatusCode, string(b), rerr
			}
			r.finished = time.Now()
			results <- r
		}()
	}
	waitFor(t, 10*time.Second, func() bool { return arrived.Load() == proxied })

	// The downloads: the file is warm in the open-file cache first, so the
	// fast path sends it.
	get(t, p.URL("/files/big.bin"), "Range", "bytes=0-0")
	started := make(chan struct{}, downloads)
	for i := range downloads {
		go func() {
			path := fmt.Sprintf("/files/big.bin (download %d)", i)
			r := result{path: path, want: fmt.Sprintf("%d bytes", downloadSize)}
			tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(p.URL("/files/big.bin"))
			started <- struct{}{}
			if err != nil {
				r.err = err
			} else {
				n, err := readSteadily(resp.Body, 64<<10, 16*time.Millisecond) // 4 MB/s
				resp.Body.Close()
				r.code, r.body, r.err = resp.StatusCode, fmt.Sprintf("%d bytes", n), err
			}
			r.finished = time.Now()
			results <- r
		}()
	}
	for range downloads {
		<-started
	}

	signalled := time.Now()
	p.Signal(syscall.SIGTERM)
	// New connections: refused once the listener is closed, which must
	// happen while the requests above are still running.
	var refusedAt time.Time
	acceptedAfterSignal := 0
	for time.Since(signalled) < 2*time.Second {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			refusedAt = time.Now()
			break
		}
		acceptedAfterSignal++
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	refusedDials := 0
	for range 5 {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
		} else {
			refusedDials++
		}
	}

	var ok int
	var lastFinish time.Time
	for range inFlight {
		r := <-results
		if r.err != nil || r.code != 200 || r.body != r.want {
			t.Errorf("request in flight during SIGTERM: %s: %d %q %v", r.path, r.code, r.body, r.err)
			continue
		}
		ok++
		if r.finished.After(lastFinish) {
			lastFinish = r.finished
		}
	}
	code := p.Wait(shutdownTimeout + 5*time.Second)
	exitedAfter := time.Since(signalled)
	faultSummary(t, "sigterm", "%d of %d slow requests in flight (%d proxied, %d downloads) finished, the last %v after SIGTERM (shutdown_timeout %v); new connections refused %v after it (%d accepted before, %d of 5 later dials refused); exit %d after %v",
		ok, inFlight, proxied, downloads, lastFinish.Sub(signalled).Round(time.Millisecond), shutdownTimeout,
		refusedAt.Sub(signalled).Round(time.Millisecond), acceptedAfterSignal, refusedDials, code, exitedAfter.Round(time.Millisecond))

	if ok != inFlight {
		t.Errorf("%d of %d requests in flight finished, want all", ok, inFlight)
	}
	if ok > 0 && lastFinish.Sub(signalled) > shutdownTimeout {
		t.Errorf("last request finished %v after SIGTERM, past shutdown_timeout %v", lastFinish.Sub(signalled), shutdownTimeout)
	}
	if refusedAt.IsZero() {
		t.Errorf("new connections still accepted 2s after SIGTERM")
	} else if ok > 0 && !refusedAt.Before(lastFinish) {
		t.Errorf("new connections refused only after the requests in flight finished")
	}
	if refusedDials != 5 {
		t.Errorf("%d of 5 dials after the listener closed were accepted", 5-refusedDials)
	}
	if code != 0 {
		t.Errorf("exit code after SIGTERM: %d, want 0\n%s", code, p.Stderr)
	}
	if exitedAfter > shutdownTimeout+2*time.Second {
		t.Errorf("exited %v after SIGTERM, want within shutdown_timeout %v (+2s)", exitedAfter, shutdownTimeout)
	}
}

// readSteadily reads r to its end, chunk bytes every pause, as a client on
// a limited link would, and returns how many bytes it read.
func readSteadily(r io.Reader, chunk int, pause time.Duration) (int64, error) {
	buf := make([]byte, chunk)
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		total += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		time.Sleep(pause)
	}
}
