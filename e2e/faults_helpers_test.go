package e2e

// Helpers of the fault tests (faults_*_test.go): figures, process memory,
// Prometheus values and latency summaries.

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// faultSummary prints a test's one-line result, "faults: NAME: ...", in the
// test log and on stdout, so it shows in `go test -v` output and in CI logs
// whatever the verbosity.
func faultSummary(t *testing.T, name, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf("faults: %s: %s", name, fmt.Sprintf(format, args...))
	t.Log(line)
	fmt.Fprintln(os.Stdout, line)
}

// procStatusKB reads a "Name:   1234 kB" field of /proc/PID/status (VmRSS,
// VmHWM) in kB; 0 if the process or the field is gone.
func procStatusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		return n
	}
	return 0
}

// metricValue returns the value of the first sample of name whose labels
// contain labelPart in a Prometheus text exposition, and whether it found one.
func metricValue(exposition, name, labelPart string) (float64, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		// The value follows the last space (label values may hold spaces).
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || !strings.Contains(line[:i], labelPart) {
			continue
		}
		value := line[i+1:]
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// latencies summarises request durations.
type latencies []time.Duration

func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func (l latencies) String() string {
	return fmt.Sprintf("p50 %v, p99 %v, max %v", l.percentile(0.5).Round(time.Microsecond),
		l.percentile(0.99).Round(time.Microsecond), l.percentile(1).Round(time.Microsecond))
}

// keepAliveClient is a client whose transport keeps up to conns idle
// connections per host, so a load of conns workers reuses them.
func keepAliveClient(t *testing.T, conns int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxIdleConns: conns, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// startRedisOn runs redis-server on addr (a fixed port, so it can be
// restarted there) and waits until it accepts; the process is killed when
// the test ends.
func startRedisOn(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testing.Short() {
			t.Skip("redis-server not installed (-short)")
		}
		t.Fatal("redis-server not installed: .ci/run installs it")
	}
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", host, "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return cmd
}
