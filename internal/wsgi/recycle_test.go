package wsgi

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"portico/internal/config"
)

// logRecord is one line of the text log: its time, message and pids.
type logRecord struct {
	at            time.Time
	msg           string
	pid, replaces string
	cause         string
}

var (
	timeRe     = regexp.MustCompile(`^time=(\S+)`)
	msgRe      = regexp.MustCompile(`msg="([^"]*)"`)
	pidRe      = regexp.MustCompile(` pid=(\d+)`)
	replacesRe = regexp.MustCompile(` replaces=(\d+)`)
	causeRe    = regexp.MustCompile(` cause=(\w+)`)
)

func parseLog(t *testing.T, s string) []logRecord {
	t.Helper()
	var out []logRecord
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := timeRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("log time %q: %v", m[1], err)
		}
		r := logRecord{at: at}
		if m := msgRe.FindStringSubmatch(line); m != nil {
			r.msg = m[1]
		}
		if m := pidRe.FindStringSubmatch(line); m != nil {
			r.pid = m[1]
		}
		if m := replacesRe.FindStringSubmatch(line); m != nil {
			r.replaces = m[1]
		}
		if m := causeRe.FindStringSubmatch(line); m != nil {
			r.cause = m[1]
		}
		out = append(out, r)
	}
	return out
}

// checkWarmRecycles proves from the pool's own log that every retired
// worker's replacement was ready before it retired: for each "worker
// retiring" record there is an earlier (in order and in time) "worker
// ready" record that replaces that pid. It returns the causes seen.
func checkWarmRecycles(t *testing.T, log string) []string {
	t.Helper()
	recs := parseLog(t, log)
	var causes []string
	for i, r := range recs {
		if r.msg != "wsgi: worker retiring" {
			continue
		}
		found := false
		for _, e := range recs[:i] {
			if e.msg == "wsgi: worker ready" && e.replaces == r.pid {
				found = true
				causes = append(causes, e.cause)
				if e.at.After(r.at) {
					t.Errorf("pid %s retired at %s, before its replacement %s was ready at %s", r.pid, r.at, e.pid, e.at)
				}
			}
		}
		if !found {
			t.Errorf("pid %s retired with no replacement ready before it:\n%s", r.pid, log)
		}
	}
	return causes
}

// max_requests: a worker is replaced after its requests, but its
// replacement (whose import takes 0.4s) is ready before it leaves, so no
// request waits for an import, and none fails.
func TestMaxRequestsWarmReplacement(t *testing.T) {
	t.Parallel()
	tp := newPoolAt(t, config.WSGI{
		App: "envapp:application", Dir: testdata(t, "app"), Workers: 1, Python: python(t),
		Timeout: config.Duration(10 * time.Second), MaxRequests: 5,
		Env: map[string]string{"ENVAPP_IMPORT_SLEEP": "0.4"},
	}, "/app")
	served := map[int]int{} // pid -> requests it answered
	deadline := time.Now().Add(30 * time.Second)
	for tp.Stats().Recycles[causeMaxRequests] < 3 && time.Now().Before(deadline) {
		resp, b := tp.get(t, "/app/pid")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %q during recycling", resp.StatusCode, b)
		}
		var m struct{ Pid int }
		json.Unmarshal(b, &m)
		served[m.Pid]++
	}
	if n := tp.Stats().Recycles[causeMaxRequests]; n < 3 {
		t.Fatalf("%d recycles by max_requests in 30s, want 3", n)
	}
	waitFor(t, 10*time.Second, "three retirements in the log", func() bool {
		return strings.Count(tp.logs.String(), "wsgi: worker retiring") >= 3
	})
	causes := checkWarmRecycles(t, tp.logs.String())
	for _, c := range causes {
		if c != causeMaxRequests {
			t.Errorf("cause %q, want max_requests", c)
		}
	}
	// The old worker served on past its limit while the new one imported:
	// the client never waited for an import.
	over := 0
	for _, n := range served {
		if n > 5 {
			over++
		}
	}
	if over == 0 {
		t.Errorf("no worker served past its 5 requests while its replacement imported: %v", served)
	}
	if st := tp.Stats(); st.Idle+st.Busy != 1 {
		t.Errorf("Stats %+v: want one serving worker", st)
	}
}

// max_requests_jitter: each process's limit is max_requests plus 0 to
// jitter, and not the same for all.
func TestRequestLimitJitter(t *testing.T) {
	p := &Pool{cfg: config.WSGI{MaxRequests: 100, MaxRequestsJitter: 10}}
	seen := map[int]bool{}
	for range 500 {
		n := p.requestLimit()
		if n < 100 || n > 110 {
			t.Fatalf("limit %d outside [100, 110]", n)
		}
		seen[n] = true
	}
	if len(seen) < 5 {
		t.Errorf("limits %v: jitter does not vary", seen)
	}
	p.cfg = config.WSGI{}
	if n := p.requestLimit(); n != 0 {
		t.Errorf("no max_requests: limit %d, want 0", n)
	}
}

// max_memory: a worker whose RSS passes the limit is replaced after its
// request, warm, and the replacement starts small.
func TestMaxMemoryRecycle(t *testing.T) {
	t.Parallel()
	tp := newPoolAt(t, config.WSGI{
		App: "envapp:application", Dir: testdata(t, "app"), Workers: 1, Python: python(t),
		Timeout: config.Duration(10 * time.Second), MaxMemory: 64 << 20,
	}, "/app")
	first := tp.pid(t)
	if resp, b := tp.get(t, "/app/grow?100"); resp.StatusCode != 200 {
		t.Fatalf("grow: %d %q", resp.StatusCode, b)
	}
	waitFor(t, 15*time.Second, "the grown worker to be replaced", func() bool {
		pids := tp.pids()
		return len(pids) == 1 && pids[0] != first
	})
	tp.logs.waitLog(t, 5*time.Second, "wsgi: worker passed max_memory", "cause=max_memory", "wsgi: worker retiring")
	checkWarmRecycles(t, tp.logs.String())
	if st := tp.Stats(); st.Recycles[causeMaxMemory] != 1 || st.Recycles[causeMaxRequests] != 0 {
		t.Errorf("Recycles %v, want max_memory 1", st.Recycles)
	}
	if rss, err := residentBytes(tp.pid(t)); err != nil || rss > 64<<20 {
		t.Errorf("replacement RSS %d (%v), want under the limit", rss, err)
	}
}

// Killed and frozen workers are counted by cause.
func TestRecycleCauses(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 2, time.Second)
	if resp, _ := tp.get(t, "/app/sleep?30"); resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	// The frozen worker's replacement must be up before a serving worker
	// is killed (killing one that is starting is a failed start).
	waitFor(t, 20*time.Second, "the frozen worker's replacement", func() bool {
		st := tp.Stats()
		return st.Recycles[causeFrozen] == 1 && st.Alive == 2 && st.Starting == 0
	})
	victim := tp.pids()[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			st, ppid, pg, ok := procStat(victim)
			t.Logf("victim %d: state %c ppid %d pgid %d exists %v; pids now %v\nstats %+v\n%s", victim, st, ppid, pg, ok, tp.pids(), tp.Stats(), tp.logs)
		}
	}()
	waitFor(t, 20*time.Second, "both replacements", func() bool {
		st := tp.Stats()
		return st.Recycles[causeFrozen] == 1 && st.Recycles[causeDied] == 1 && st.Alive == 2 && st.Starting == 0
	})
	if s := tp.Status(); s.Recycles["frozen"] != 1 || s.Recycles["died"] != 1 || s.Alive != 2 || s.Idle+s.Busy != 2 {
		t.Errorf("Status %+v", s)
	}
}

// As root, workers run as cfg.User, with cfg.Env in their environment.
func TestUserAndEnv(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("dropping privileges needs root")
	}
	tp := newPoolAt(t, config.WSGI{
		App: "envapp:application", Dir: testdata(t, "app"), Workers: 1, Python: python(t),
		Timeout: config.Duration(10 * time.Second), User: "nobody",
		Env: map[string]string{"PORTICO_TEST_GREETING": "hi there"},
	}, "/app")
	_, b := tp.get(t, "/app/whoami")
	var m struct {
		UID      int `json:"uid"`
		Greeting string
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.UID != 65534 || m.Greeting != "hi there" {
		t.Errorf("whoami %s: want uid 65534 (nobody) and the greeting", b)
	}
	if strings.Contains(tp.logs.String(), "workers run as root") {
		t.Errorf("root warning with a user set")
	}
}

// warmup: every new worker, the first ones and each replacement, gets the
// warm-up request once, before its first client request.
func TestWarmupRequest(t *testing.T) {
	t.Parallel()
	tp := newPoolAt(t, config.WSGI{
		App: "envapp:application", Dir: testdata(t, "app"), Workers: 2, Python: python(t),
		Timeout: config.Duration(10 * time.Second), MaxRequests: 4, Warmup: "/warm?w=1",
	}, "/app")
	seen := map[int]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < 4 && time.Now().Before(deadline) {
		resp, b := tp.get(t, "/app/warmed")
		var m struct {
			Pid    int
			Warmed []string
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("warmed: %d %q", resp.StatusCode, b)
		}
		if len(m.Warmed) != 1 || m.Warmed[0] != "w=1" {
			t.Fatalf("worker %d got warm-up requests %q before its first client request, want [w=1]", m.Pid, m.Warmed)
		}
		seen[m.Pid] = true
	}
	if len(seen) < 4 {
		t.Errorf("saw %d workers in 30s, want the first two and two replacements", len(seen))
	}
	// In the log, each replacement is warmed before it is ready.
	recs := parseLog(t, tp.logs.String())
	warmedAt := map[string]int{}
	for i, r := range recs {
		switch r.msg {
		case "wsgi: worker warmed":
			warmedAt[r.pid] = i + 1
		case "wsgi: worker ready":
			if warmedAt[r.pid] == 0 {
				t.Errorf("replacement %s ready before it was warmed:\n%s", r.pid, tp.logs)
			}
		}
	}
}

// A user who cannot enter the app's folder: New fails at once and says
// who could not do what.
func TestUserCannotEnterDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("dropping privileges needs root")
	}
	dir := t.TempDir() // 0700, root's
	if err := os.WriteFile(dir+"/app.py", []byte("def app(e, s):\n    return []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(config.WSGI{App: "app:app", Dir: dir, Workers: 1, Python: python(t), User: "nobody"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "as user nobody") || !strings.Contains(err.Error(), "cannot enter "+filepath.Dir(dir)) {
		t.Errorf("New: %v; want a start error naming the user and the denied folder", err)
	}
	if _, err := New(config.WSGI{App: "app:app", Dir: dir, Workers: 1, Python: python(t), User: "no-such-user-x"}, Options{}); err == nil || !strings.Contains(err.Error(), "no-such-user-x") {
		t.Errorf("unknown user: %v", err)
	}
}
