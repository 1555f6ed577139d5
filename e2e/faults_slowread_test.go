package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Fault: slow readers on a 100 MB file, on both engines (the plain
// listener's fast path sends it with sendfile, TLS goes through net/http).
// write_timeout frees each of them: portico's side of the connection is
// closed within write_timeout + margin, though the download would take
// hours at their pace. Meanwhile other clients get small files with
// normal latency and a full 100 MB download at full speed.
func TestFaultSlowReaderFreedByWriteTimeout(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) { testSlowReaders(t, name, useTLS) })
	}
}

const (
	bigFileSize       = 100 << 20
	slowWriteTimeout  = 2 * time.Second
	slowFreedMargin   = 2 * time.Second
	otherClientsP99Ok = 250 * time.Millisecond // 4 times that under -race
	// bigRangeSize is what another client fetches of the big file while the
	// slow readers hold it: enough to show it is served at full speed,
	// little enough not to eat the CPU the latency figures need (TLS).
	bigRangeSize = 16 << 20
)

func testSlowReaders(t *testing.T, name string, useTLS bool) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/small.txt": "small answer"})
	big := filepath.Join(dir, "public/big.bin")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, bigFileSize); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	tlsLine := ""
	if useTLS {
		certPEM, keyPEM := selfSigned(t, "slow.test")
		writeFiles(t, dir, map[string]string{"cert.pem": certPEM, "key.pem": keyPEM})
		tlsLine = `tls = { cert = "cert.pem", key = "key.pem" }`
	}
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
write_timeout = %q
[[site]]
listen = ["127.0.0.1:0"]
%s
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, slowWriteTimeout.String(), tlsLine), 1)
	_, hostPort, _ := strings.Cut(strings.TrimSuffix(p.URLs[0], "/"), "://")

	tr := &http.Transport{MaxIdleConnsPerHost: 8, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 15 * time.Second}

	// Baseline latency of small requests before any slow reader.
	var base latencies
	for range 100 {
		start := time.Now()
		if _, err := fetchSmall(hc, p.URL("/small.txt")); err != nil {
			t.Fatalf("baseline request: %v", err)
		}
		base = append(base, time.Since(start))
	}

	// Warm the big file into the open-file cache, so the plain listener's
	// fast path sends it rather than handing the request to net/http.
	warm, _ := http.NewRequest("GET", p.URL("/big.bin"), nil)
	warm.Header.Set("Range", "bytes=0-0")
	if resp, err := hc.Do(warm); err != nil || resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("warming big.bin: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	readers := []*slowReader{
		{name: "stalled", readEvery: 0},
		{name: "trickle 2KB/s", readEvery: 500 * time.Millisecond, readSize: 1024},
	}
	for _, r := range readers {
		r.start(t, hostPort, useTLS)
	}

	// Other clients while the slow readers are held: small files in a loop
	// and a download of the first 16 MB of the big file.
	stop := make(chan struct{})
	var other latencies
	var otherMu sync.Mutex
	var otherErrs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				if _, err := fetchSmall(hc, p.URL("/small.txt")); err != nil {
					otherErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				otherMu.Lock()
				other = append(other, time.Since(start))
				otherMu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	var fullBytes int64
	var fullTook time.Duration
	var fullErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(300 * time.Millisecond) // once the slow readers are stuck
		start := time.Now()
		req, _ := http.NewRequest("GET", p.URL("/big.bin"), nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", bigRangeSize-1))
		resp, err := hc.Do(req)
		if err != nil {
			fullErr = err
			return
		}
		fullBytes, fullErr = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if fullErr == nil && resp.StatusCode != http.StatusPartialContent {
			fullErr = fmt.Errorf("status %d", resp.StatusCode)
		}
		fullTook = time.Since(start)
	}()

	for _, r := range readers {
		r.waitFreed(t, slowWriteTimeout+slowFreedMargin+3*time.Second)
	}
	close(stop)
	wg.Wait()

	for _, r := range readers {
		t.Logf("%s reader: %d bytes read before portico closed its side %v after the request (write_timeout %v); it then read to the end: %d bytes in all, %v",
			r.name, r.readBeforeFree.Load(), r.freedAfter.Round(time.Millisecond), slowWriteTimeout, r.total, r.endErr)
	}
	faultSummary(t, "slow-reader/"+name, "%d slow readers of a 100 MB file freed after %v and %v (write_timeout %v); meanwhile %d small requests by others, %d errors, latency %v (before: %v); 16 MB of it by another client: %d bytes in %v",
		len(readers), readers[0].freedAfter.Round(time.Millisecond), readers[1].freedAfter.Round(time.Millisecond), slowWriteTimeout,
		len(other), otherErrs.Load(), other, base, fullBytes, fullTook.Round(time.Millisecond))

	for _, r := range readers {
		switch {
		case r.freedAfter == 0:
			t.Errorf("%s reader: still connected to portico after %v", r.name, slowWriteTimeout+slowFreedMargin+3*time.Second)
		case r.freedAfter > slowWriteTimeout+slowFreedMargin:
			t.Errorf("%s reader: freed after %v, want within write_timeout %v + %v", r.name, r.freedAfter, slowWriteTimeout, slowFreedMargin)
		case r.freedAfter < slowWriteTimeout-100*time.Millisecond:
			t.Errorf("%s reader: freed after %v, before write_timeout %v", r.name, r.freedAfter, slowWriteTimeout)
		}
		if r.total >= bigFileSize {
			t.Errorf("%s reader: got the whole file (%d bytes): it was not cut", r.name, r.total)
		}
	}
	if n := otherErrs.Load(); n > 0 {
		t.Errorf("%d of %d requests by other clients failed; first: %v", n, len(other), firstErr.Load())
	}
	if len(other) < 50 {
		t.Errorf("only %d requests by other clients while the slow readers were held", len(other))
	}
	p99Ok := otherClientsP99Ok
	if raceEnabled {
		p99Ok *= 4
	}
	if p99 := other.percentile(0.99); p99 > p99Ok {
		t.Errorf("other clients' p99 latency %v while slow readers were held, want under %v", p99, p99Ok)
	}
	// A request that had to wait for a slow reader would take about as
	// long as write_timeout.
	if worst := other.percentile(1); worst >= slowWriteTimeout {
		t.Errorf("another client waited %v, as long as write_timeout: it waited for a slow reader", worst)
	}
	if fullErr != nil || fullBytes != bigRangeSize {
		t.Errorf("16 MB of the big file by another client: %d bytes, %v; want %d", fullBytes, fullErr, bigRangeSize)
	}
}

func fetchSmall(hc *http.Client, url string) (string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || string(b) != "small answer" {
		return "", fmt.Errorf("small.txt: %d %q", resp.StatusCode, b)
	}
	return string(b), nil
}

// slowReader asks for big.bin on a connection with a small receive buffer
// and reads readSize bytes every readEvery (nothing at all if readEvery is
// 0). It watches portico's side of its connection in /proc/net/tcp.
type slowReader struct {
	name      string
	readEvery time.Duration
	readSize  int

	conn           net.Conn
	serverPort     int
	clientPort     int
	sent           time.Time
	readBeforeFree atomic.Int64
	stopReading    chan struct{}
	readerDone     chan struct{}
	freedAfter     time.Duration
	total          int64
	endErr         error
}

func (r *slowReader) start(t *testing.T, hostPort string, useTLS bool) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	raw, err := d.Dial("tcp", hostPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	r.clientPort = raw.LocalAddr().(*net.TCPAddr).Port
	r.serverPort = raw.RemoteAddr().(*net.TCPAddr).Port
	r.conn = raw
	if useTLS {
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "slow.test", NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		r.conn = tc
	}
	r.sent = time.Now()
	if _, err := io.WriteString(r.conn, "GET /big.bin HTTP/1.1\r\nHost: slow.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(r.conn, 1024)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("%s reader: status line %q, %v", r.name, status, err)
	}
	r.stopReading = make(chan struct{})
	r.readerDone = make(chan struct{})
	go func() {
		defer close(r.readerDone)
		if r.readEvery == 0 {
			<-r.stopReading
		} else {
			buf := make([]byte, r.readSize)
			tick := time.NewTicker(r.readEvery)
			defer tick.Stop()
		loop:
			for {
				select {
				case <-r.stopReading:
					break loop
				case <-tick.C:
					n, err := io.ReadFull(br, buf)
					r.readBeforeFree.Add(int64(n))
					if err != nil {
						break loop
					}
				}
			}
		}
		// Portico has let go: whatever it had sent comes quickly now,
		// then the end of the connection.
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, br)
		r.total = r.readBeforeFree.Load() + n
		r.endErr = err
	}()
}

// waitFreed polls /proc/net/tcp until portico's side of the connection is
// no longer an established socket owned by a process, then lets the
// reader drain the rest.
func (r *slowReader) waitFreed(t *testing.T, limit time.Duration) {
	t.Helper()
	for time.Since(r.sent) < limit {
		if !serverSideHeld(r.serverPort, r.clientPort) {
			r.freedAfter = time.Since(r.sent)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(r.stopReading)
	select {
	case <-r.readerDone:
	case <-time.After(15 * time.Second):
		t.Errorf("%s reader: connection not ended 15s after portico let it go", r.name)
	}
}

// serverSideHeld reports whether /proc/net/tcp has portico's end of the
// connection 127.0.0.1:serverPort <-> clientPort established and owned by
// a process (inode not 0: a closed socket still draining has none).
func serverSideHeld(serverPort, clientPort int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	local := fmt.Sprintf(":%04X", serverPort)
	remote := fmt.Sprintf(":%04X", clientPort)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || !strings.HasSuffix(f[1], local) || !strings.HasSuffix(f[2], remote) {
			continue
		}
		inode, _ := strconv.Atoi(f[9])
		return f[3] == "01" && inode != 0
	}
	return false
}
