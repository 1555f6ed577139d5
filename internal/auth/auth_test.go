package auth

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"portico/internal/clientip"
	"portico/internal/config"
	"portico/internal/enginetest"
	"portico/internal/layer"
)

// view is a GateRequest for unit tests.
type view struct {
	method, path, remote string
	header               http.Header
}

func (v view) Method() string            { return v.method }
func (v view) Path() string              { return v.path }
func (v view) Host() string              { return "example.test" }
func (v view) RequestID() string         { return "" }
func (v view) Scheme() string            { return "http" }
func (v view) Header(name string) string { return v.header.Get(name) }
func (v view) RemoteAddr() string        { return v.remote }
func (v view) Client(res *clientip.Resolver) netip.Addr {
	a, _ := res.Client(v.remote, v.header["X-Forwarded-For"])
	return a
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func mustHash(t testing.TB, pass string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newBasic(t testing.TB, cfg config.BasicAuth, log *bytes.Buffer) (*Basic, *Counters) {
	t.Helper()
	c := &Counters{}
	opts := Options{Counters: c}
	if log != nil {
		opts.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	b, err := NewBasic(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

func TestBasicAuthAnswers(t *testing.T) {
	var log bytes.Buffer
	b, counters := newBasic(t, config.BasicAuth{Realm: "staff", Users: map[string]string{"alice": mustHash(t, "secret", 4)}}, &log)
	cases := []struct {
		name, auth string
		want       int // 0: passes
		body       string
	}{
		{"valid", basicHeader("alice", "secret"), 0, ""},
		{"valid, scheme in other case", "bAsIc " + base64.StdEncoding.EncodeToString([]byte("alice:secret")), 0, ""},
		{"no header", "", 401, "Authentication required"},
		{"wrong password", basicHeader("alice", "nope"), 401, "Authentication required"},
		{"unknown user", basicHeader("mallory", "secret"), 401, "Authentication required"},
		{"bearer", "Bearer abc", 401, "Authentication required"},
		{"not base64", "Basic !!!", 401, "Malformed"},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alicesecret")), 401, "Malformed"},
		{"empty credential", "Basic ", 401, "Malformed"},
		{"too long", "Basic " + strings.Repeat("QUFB", 100_000), 401, "Malformed"},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.auth != "" {
			h.Set("Authorization", c.auth)
		}
		a := b.Check(view{"GET", "/x", "192.0.2.1:1000", h})
		switch {
		case c.want == 0 && a != nil:
			t.Errorf("%s: got %d, want it to pass", c.name, a.Status)
		case c.want != 0 && a == nil:
			t.Errorf("%s: passed, want %d", c.name, c.want)
		case a != nil && (a.Status != c.want || !strings.Contains(a.Body, c.body)):
			t.Errorf("%s: got %d %q, want %d %q", c.name, a.Status, a.Body, c.want, c.body)
		case a != nil && (len(a.Header) != 1 || a.Header[0] != [2]string{"Www-Authenticate", `Basic realm="staff", charset="UTF-8"`}):
			t.Errorf("%s: header %q", c.name, a.Header)
		}
	}
	if got := counters.BasicFailures.Load(); got != 6 {
		t.Errorf("failures counted %d, want 6 (missing credentials are a challenge, not a failure)", got)
	}
	if !strings.Contains(log.String(), "basic auth failed") || !strings.Contains(log.String(), "client=192.0.2.1") || !strings.Contains(log.String(), "user=mallory") {
		t.Errorf("log does not name the failures:\n%s", log.String())
	}
	if strings.Contains(log.String(), "secret") {
		t.Errorf("log holds a password:\n%s", log.String())
	}
}

// TestBasicAuthCostTwelveCheckedOnce: a bcrypt cost-12 hash (as
// `htpasswd -B -C 12` writes it) is checked once per credential; the
// requests after the first are answered from the cache.
func TestBasicAuthCostTwelveCheckedOnce(t *testing.T) {
	var hash string
	if p, err := exec.LookPath("htpasswd"); err == nil {
		out, err := exec.Command(p, "-nbB", "-C", "12", "bob", "pw").Output()
		if err != nil {
			t.Fatal(err)
		}
		hash = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "bob:"))
	} else {
		hash = mustHash(t, "pw", 12)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "users.htpasswd")
	os.WriteFile(file, []byte("bob:"+hash+"\n"), 0o644)
	b, _ := newBasic(t, config.BasicAuth{Htpasswd: file}, nil)
	v := view{"GET", "/", "127.0.0.1:1", http.Header{"Authorization": {basicHeader("bob", "pw")}}}
	start := time.Now()
	if a := b.Check(v); a != nil {
		t.Fatalf("first check: %d", a.Status)
	}
	first := time.Since(start)
	start = time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if a := b.Check(v); a != nil {
					t.Errorf("cached check: %d", a.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	rest := time.Since(start)
	if n := b.bcryptRuns.Load(); n != 1 {
		t.Errorf("bcrypt ran %d times for one credential, want 1", n)
	}
	t.Logf("first check %v, 800 cached checks %v", first, rest)
	if rest > first {
		t.Errorf("800 cached checks took %v, longer than one bcrypt (%v)", rest, first)
	}
}

// TestBasicAuthRemembersFailures: a repeated wrong guess, or an unknown
// user, costs no second bcrypt run.
func TestBasicAuthRemembersFailures(t *testing.T) {
	b, _ := newBasic(t, config.BasicAuth{Users: map[string]string{"bob": mustHash(t, "pw", 4)}}, nil)
	for _, auth := range []string{basicHeader("bob", "guess"), basicHeader("nobody", "x")} {
		v := view{"GET", "/", "127.0.0.1:1", http.Header{"Authorization": {auth}}}
		for i := 0; i < 3; i++ {
			if a := b.Check(v); a == nil || a.Status != 401 {
				t.Fatalf("%s: %v, want 401", auth, a)
			}
		}
	}
	if n := b.bcryptRuns.Load(); n != 2 {
		t.Errorf("bcrypt ran %d times for 6 checks of 2 credentials, want 2", n)
	}
}

func TestCredCacheIsBounded(t *testing.T) {
	c := newCredCache(64)
	now := time.Now().UnixNano()
	for i := 0; i < 1000; i++ {
		var k [32]byte
		k[0], k[1] = byte(i), byte(i>>8)
		c.put(k, true, now, time.Minute)
	}
	if n := c.len(); n > 64 {
		t.Errorf("cache holds %d entries, bound 64", n)
	}
}

func TestBasicAllowedPathDoesNotAllocate(t *testing.T) {
	b, _ := newBasic(t, config.BasicAuth{Users: map[string]string{"alice": mustHash(t, "secret", 4)}}, nil)
	v := view{"GET", "/x", "192.0.2.1:1000", http.Header{"Authorization": {basicHeader("alice", "secret")}}}
	b.Check(v)
	var g layer.GateRequest = v
	if n := testing.AllocsPerRun(200, func() { b.Check(g) }); n != 0 {
		t.Errorf("a cached credential costs %v allocations", n)
	}
}

// TestBasicAuthBothEngines: the gate in a chain answers the same on both
// engines, keeps the fast path, and the handler never sees the
// credential.
func TestBasicAuthBothEngines(t *testing.T) {
	b, _ := newBasic(t, config.BasicAuth{Realm: "staff", Users: map[string]string{"alice": mustHash(t, "secret", 4)}}, nil)
	f := enginetest.Start(t, layer.Chain(echo{}, b).(enginetest.Handler), nil)
	r := f.Same(t, true, enginetest.GET("/", "x"))
	if r[0].Status != 401 || r[0].Header.Get("Www-Authenticate") == "" {
		t.Errorf("no credential: %+v", r[0])
	}
	r = f.Same(t, true, enginetest.GET("/", "x", "Authorization: "+basicHeader("alice", "secret")))
	if r[0].Status != 200 || r[0].Body != "auth=" {
		t.Errorf("valid credential: %+v", r[0])
	}
	r = f.Same(t, true, enginetest.GET("/", "x", "Authorization: Basic %%%"))
	if r[0].Status != 401 || !strings.Contains(r[0].Body, "Malformed") {
		t.Errorf("malformed: %+v", r[0])
	}
}

func TestBasicForwardAuthorization(t *testing.T) {
	b, _ := newBasic(t, config.BasicAuth{ForwardAuthorization: true, Users: map[string]string{"alice": mustHash(t, "secret", 4)}}, nil)
	h := layer.Chain(echo{}, b)
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", basicHeader("alice", "secret"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Body.String(); got != "auth="+basicHeader("alice", "secret") {
		t.Errorf("with forward_authorization the handler saw %q", got)
	}
}

func TestACL(t *testing.T) {
	res := clientip.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	a, err := NewACL([]string{"192.0.2.0/24", "2001:db8::/32"}, []string{"192.0.2.66"}, Options{Clients: res})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		remote, xff string
		pass        bool
	}{
		{"192.0.2.1:5", "", true},
		{"192.0.2.66:5", "", false},
		{"198.51.100.1:5", "", false},
		{"[2001:db8::5]:5", "", true},
		{"[::ffff:192.0.2.1]:5", "", true},
		{"198.51.100.1:5", "192.0.2.1", false}, // untrusted peer: XFF ignored
		{"10.0.0.1:5", "192.0.2.1", true},      // trusted proxy: the client counts
		{"10.0.0.1:5", "192.0.2.66", false},
		{"@", "", false},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.xff != "" {
			h.Set("X-Forwarded-For", c.xff)
		}
		got := a.Check(view{"GET", "/", c.remote, h})
		if (got == nil) != c.pass || got != nil && got.Status != 403 {
			t.Errorf("%s xff %q: %v, want pass=%v", c.remote, c.xff, got, c.pass)
		}
	}
}

// echo answers with the Authorization field it sees.
type echo struct{}

func (echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := "auth=" + r.Header.Get("Authorization")
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", itoa(len(body)))
	w.Write([]byte(body))
}

// FuzzBasicCheck: no Authorization value panics the gate, and only the
// one valid credential passes.
func FuzzBasicCheck(f *testing.F) {
	f.Add(basicHeader("alice", "secret"))
	f.Add("Basic %%%")
	f.Add("basic YWxpY2U6")
	f.Add("Bearer x")
	b, _ := newBasic(f, config.BasicAuth{Users: map[string]string{"alice": mustHash(f, "secret", 4)}}, nil)
	good := basicHeader("alice", "secret")
	f.Fuzz(func(t *testing.T, auth string) {
		a := b.Check(view{"GET", "/", "192.0.2.1:1", http.Header{"Authorization": {auth}}})
		if a == nil {
			// RFC 7235 allows several spaces after the scheme; net/http's
			// BasicAuth (the oracle) takes one.
			norm := auth
			if len(norm) > 6 {
				norm = norm[:6] + strings.TrimLeft(norm[6:], " ")
			}
			user, pass, ok := (&http.Request{Header: http.Header{"Authorization": {norm}}}).BasicAuth()
			if !ok || user != "alice" || pass != "secret" {
				t.Fatalf("%q passed (canonical %q)", auth, good)
			}
		} else if a.Status != 401 {
			t.Fatalf("%q: status %d", auth, a.Status)
		}
	})
}
