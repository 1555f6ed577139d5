package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// cgiDir makes dir usable by CGI scripts run as nobody (the tests run
// as root) and marks the scripts executable.
func cgiDir(dir string, scripts ...string) {
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	for _, s := range scripts {
		os.Chmod(filepath.Join(dir, s), 0o755)
	}
}

// htpasswdLine makes a "user:hash" line as `htpasswd -B` writes it (the
// real tool when installed, so the test reads its exact format).
func htpasswdLine(t *testing.T, user, pass string) string {
	t.Helper()
	if p, err := exec.LookPath("htpasswd"); err == nil {
		out, err := exec.Command(p, "-nbB", "-C", "5", user, pass).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out)) + "\n"
	}
	if !testing.Short() {
		t.Fatal("htpasswd not installed: .ci/run installs apache2-utils")
	}
	h, _ := bcrypt.GenerateFromPassword([]byte(pass), 5)
	return user + ":" + string(h) + "\n"
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// echoAuthUpstream answers with the Authorization and Remote-User fields it got.
func echoAuthUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream auth=%q user=%q", r.Header.Get("Authorization"), r.Header.Get("Remote-User"))
	}))
	t.Cleanup(up.Close)
	return up
}

const envScript = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nprintf 'remote=%s auth=%s\\n' \"$REMOTE_ADDR\" \"$HTTP_AUTHORIZATION\"\n"

// TestAccessBasicAuth: basic auth on a site: 401 with the challenge, the
// password never reaches an upstream or a CGI script, malformed and
// oversized credentials get a clear 401, failures are logged and counted,
// a changed htpasswd file is read on reload, and check refuses other
// hash kinds.
func TestAccessBasicAuth(t *testing.T) {
	dir := t.TempDir()
	up := echoAuthUpstream(t)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	writeFiles(t, dir, map[string]string{
		"public/index.html": "hello staff",
		"users.htpasswd":    htpasswdLine(t, "alice", "wonder"),
		"cgi-bin/env":       envScript,
		"cgi-bin/redir":     "#!/bin/sh\nprintf 'Location: /cgi-bin/env\\n\\n'\n",
	})
	cgiDir(dir, "cgi-bin/env", "cgi-bin/redir")
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
admin = %q
[[site]]
listen = ["127.0.0.1:0"]
basic_auth = { htpasswd = "users.htpasswd", realm = "staff" }
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = [%q] }
`, admin, up.URL), 1)

	resp, _ := get(t, p.URL("/"))
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="staff", charset="UTF-8"` {
		t.Errorf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	good := basic("alice", "wonder")
	if resp, body := get(t, p.URL("/"), "Authorization", good); resp.StatusCode != 200 || body != "hello staff" {
		t.Errorf("valid credentials: %d %q", resp.StatusCode, body)
	}
	if _, body := get(t, p.URL("/api/x"), "Authorization", good); body != `upstream auth="" user=""` {
		t.Errorf("the upstream got the credential: %s", body)
	}
	if _, body := get(t, p.URL("/cgi-bin/env"), "Authorization", good); !strings.Contains(body, "auth=\n") {
		t.Errorf("the CGI script got the credential: %q", body)
	}
	// A CGI local redirect goes through the routing again, gates
	// included: the credential the client sent still counts there, and
	// still does not reach the script.
	if resp, body := get(t, p.URL("/cgi-bin/redir"), "Authorization", good); resp.StatusCode != 200 || !strings.Contains(body, "auth=\n") {
		t.Errorf("local redirect on an authenticated site: %d %q", resp.StatusCode, body)
	}
	for _, c := range []struct{ name, auth, want string }{
		{"wrong password", basic("alice", "guess"), "Authentication required"},
		{"not base64", "Basic ***", "Malformed"},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), "Malformed"},
		{"100 KB credential", "Basic " + strings.Repeat("QUFB", 25_000), "Malformed"},
	} {
		resp, body := get(t, p.URL("/"), "Authorization", c.auth)
		if resp.StatusCode != 401 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 401 %q", c.name, resp.StatusCode, body, c.want)
		}
	}
	// A 100 KB header of another name is no credential: still 401.
	if resp, _ := get(t, p.URL("/"), "X-Padding", strings.Repeat("x", 100<<10)); resp.StatusCode != 401 {
		t.Errorf("100 KB header: %d, want 401", resp.StatusCode)
	}
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "basic auth failed") })
	if !strings.Contains(p.Stderr.String(), "client=127.0.0.1") {
		t.Errorf("failure log lacks the client address:\n%s", p.Stderr)
	}
	if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "portico_auth_failures_total 4") {
		t.Errorf("metrics do not count 4 failures:\n%s", grepLines(body, "portico_auth"))
	}
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stdout.String(), ` alice [`) })

	// The file changes on disk: the reload reads it.
	writeFiles(t, dir, map[string]string{"users.htpasswd": htpasswdLine(t, "alice", "new-secret")})
	p.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool {
		resp, _ := get(t, p.URL("/"), "Authorization", basic("alice", "new-secret"))
		return resp.StatusCode == 200
	})
	if resp, _ := get(t, p.URL("/"), "Authorization", good); resp.StatusCode != 401 {
		t.Errorf("the old password still works after reload: %d", resp.StatusCode)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAccessCheckRefusesOtherHashes: portico check names the hash kind
// it refuses and the line.
func TestAccessCheckRefusesOtherHashes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"public/index.html": "x",
		"users.htpasswd":    "# staff\nbob:$apr1$Vw1gS9kq$1wVw7kYfj6c6mCUoxAz9o/\ncarol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
		"portico.toml": `
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
  basic_auth = { htpasswd = "users.htpasswd" }
`,
	})
	code, _, stderr := runPortico(t, dir, "check", "-c", "portico.toml")
	if code != 1 || !strings.Contains(stderr, "portico.toml:7:") || !strings.Contains(stderr, "line 2: user \"bob\": the hash is Apache MD5") ||
		!strings.Contains(stderr, "line 3: user \"carol\": the hash is SHA-1") || !strings.Contains(stderr, "htpasswd -B") {
		t.Errorf("check: exit %d\n%s", code, stderr)
	}
}

// dialFrom returns an HTTP client whose connections come from the
// loopback address local (127.0.0.2, ...), so tests can be several
// clients.
func dialFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func getFrom(t *testing.T, c *http.Client, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAccessAllowDenyAndTrustedProxies: allow/deny decide on the client
// address: X-Forwarded-For counts only from a trusted proxy, and the
// access log, CGI REMOTE_ADDR and the lists agree on it.
func TestAccessAllowDenyAndTrustedProxies(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "open", "cgi-bin/env": envScript})
	cgiDir(dir, "cgi-bin/env")
	p := startConfig(t, dir, `
[server]
trusted_proxies = ["127.0.0.1"]
[[site]]
listen = ["127.0.0.1:0"]
deny = ["198.51.100.0/24"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
  [[site.route]]
  path = "/office/"
  static = { root = "public" }
  allow = ["192.0.2.0/24", "127.0.0.3"]
`, 1)
	proxy, direct2, direct3 := dialFrom("127.0.0.1"), dialFrom("127.0.0.2"), dialFrom("127.0.0.3")
	cases := []struct {
		name   string
		c      *http.Client
		path   string
		xff    string
		status int
	}{
		{"client behind the trusted proxy, denied", proxy, "/", "198.51.100.9", 403},
		{"spoofed left part ignored", proxy, "/", "198.51.100.9, 203.0.113.5", 200},
		{"client behind the trusted proxy, allowed", proxy, "/", "203.0.113.5", 200},
		{"untrusted peer cannot forge", direct2, "/", "203.0.113.5", 200},
		{"untrusted peer's XFF ignored for deny too", direct2, "/", "198.51.100.9", 200},
		{"route allow list: in", proxy, "/office/", "192.0.2.44", 200},
		{"route allow list: out", proxy, "/office/", "203.0.113.5", 403},
		{"route allow list: direct peer in", direct3, "/office/", "", 200},
		{"route allow list: direct peer out", direct2, "/office/", "", 403},
		{"route replaces the site's deny", proxy, "/office/", "198.51.100.9", 403},
	}
	for _, c := range cases {
		var hdr []string
		if c.xff != "" {
			hdr = []string{"X-Forwarded-For", c.xff}
		}
		if status, body := getFrom(t, c.c, p.URL(c.path), hdr...); status != c.status {
			t.Errorf("%s: %d %q, want %d", c.name, status, body, c.status)
		}
	}
	if _, body := getFrom(t, proxy, p.URL("/cgi-bin/env"), "X-Forwarded-For", "203.0.113.5"); !strings.Contains(body, "remote=203.0.113.5 ") {
		t.Errorf("CGI REMOTE_ADDR behind the trusted proxy: %q", body)
	}
	if _, body := getFrom(t, direct2, p.URL("/cgi-bin/env"), "X-Forwarded-For", "203.0.113.5"); !strings.Contains(body, "remote=127.0.0.2 ") {
		t.Errorf("CGI REMOTE_ADDR from an untrusted peer: %q", body)
	}
	waitFor(t, 5*time.Second, func() bool {
		return strings.Contains(p.Stdout.String(), "\n198.51.100.9 - -") && strings.Contains(p.Stdout.String(), "\n127.0.0.2 - -")
	})
}

// TestAccessForwardAuth: forward auth in front of a proxy route: 2xx lets
// the request through with Remote-User, a redirect to a login page goes
// to the client, a dead auth server is a 503.
func TestAccessForwardAuth(t *testing.T) {
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") == "session=ok" {
			w.Header().Set("Remote-User", "alice")
			return
		}
		http.Redirect(w, r, "https://login.example/?rd="+r.Header.Get("X-Forwarded-Uri"), http.StatusFound)
	}))
	defer authSrv.Close()
	up := echoAuthUpstream(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d/", freePort(t))
	p := startConfig(t, t.TempDir(), fmt.Sprintf(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = [%q] }
  forward_auth = { url = %q, copy_headers = ["Remote-User"] }
  [[site.route]]
  path = "/down/"
  proxy = { upstreams = [%q] }
  forward_auth = { url = %q, timeout = "1s" }
`, up.URL, authSrv.URL+"/verify", up.URL, dead), 1)
	if resp, body := get(t, p.URL("/app"), "Cookie", "session=ok", "Remote-User", "mallory"); resp.StatusCode != 200 || !strings.Contains(body, `user="alice"`) {
		t.Errorf("authorised: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, p.URL("/app?x=1")); resp.StatusCode != 302 || resp.Header.Get("Location") != "https://login.example/?rd=/app?x=1" {
		t.Errorf("not logged in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := get(t, p.URL("/down/x")); resp.StatusCode != 503 || strings.Contains(body, "upstream") {
		t.Errorf("auth server down: %d %q, want 503", resp.StatusCode, body)
	}
}
