package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestVersionHelpAndUsageErrors(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := runPortico(t, dir, "version")
	if code != 0 || !strings.HasPrefix(out, "portico ") {
		t.Errorf("version: exit %d, out %q", code, out)
	}
	for _, cmd := range []string{"serve", "run", "check", "reload"} {
		code, out, _ := runPortico(t, dir, cmd, "-h")
		if code != 0 || !strings.Contains(out, "Usage: portico "+cmd) {
			t.Errorf("%s -h: exit %d, out %q", cmd, code, out)
		}
	}
	code, _, errOut := runPortico(t, dir, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runPortico(t, dir, "serve", "--no-such-flag")
	if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("bad flag: exit %d, stderr %q (want one line)", code, errOut)
	}
}

func TestUserErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	// A port in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	writeFiles(t, dir, map[string]string{"public/index.html": "hi", "portico.toml": fmt.Sprintf(`
[[site]]
listen = ["127.0.0.1:%d"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, port)})
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"port in use", []string{"run", "-c", "portico.toml"}, "address already in use"},
		{"missing folder", []string{"serve", "-d", "nope", "0"}, "does not exist"},
		{"missing config", []string{"run", "-c", "missing.toml"}, "missing.toml"},
		{"bad port", []string{"serve", "http"}, "not a port number"},
	}
	for _, tc := range cases {
		code, _, errOut := runPortico(t, dir, tc.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code == 0 || len(lines) != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "goroutine") {
			t.Errorf("%s: exit %d, stderr %q; want non-zero and one line containing %q", tc.name, code, errOut, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"public/index.html": "hi",
		"good.toml": `
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`,
		"bad.toml": `
[server]
shutdown_timeout = "soon"

[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "missing", colour = "red" }
`,
	})
	code, out, _ := runPortico(t, dir, "check", "-c", "good.toml")
	if code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("check good: exit %d, out %q", code, out)
	}
	code, out, errOut := runPortico(t, dir, "check", "-c", "bad.toml")
	if code != 1 || !strings.Contains(out+errOut, "bad.toml:3:") {
		t.Errorf("check bad: exit %d, output %q; want exit 1 and bad.toml:3:", code, out+errOut)
	}
}

func TestQuickModeServesFolderWithListing(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"hello.txt": "hello world\n", "sub/a.txt": "a"})
	p := startPortico(t, dir, 1, "serve", "-b", "127.0.0.1", "0")
	if !strings.HasPrefix(p.URLs[0], "http://127.0.0.1:") {
		t.Fatalf("serving line URL %q", p.URLs[0])
	}
	resp, body := get(t, p.URL("/hello.txt"))
	if resp.StatusCode != 200 || body != "hello world\n" {
		t.Errorf("GET /hello.txt: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, p.URL("/"))
	if resp.StatusCode != 200 || !strings.Contains(body, "hello.txt") || !strings.Contains(body, "sub/") {
		t.Errorf("GET / listing: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, p.URL("/sub"))
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/sub/" {
		t.Errorf("GET /sub: %d Location %q; want 301 to /sub/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestQuickModeSPA(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "<div id=app></div>", "assets/app.js": "js"})
	p := startPortico(t, dir, 1, "serve", "--spa", "-b", "127.0.0.1", "0")
	resp, body := get(t, p.URL("/users/42"), "Accept", "text/html,application/xhtml+xml")
	if resp.StatusCode != 200 || body != "<div id=app></div>" {
		t.Errorf("SPA navigation: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, p.URL("/assets/missing.js"), "Accept", "*/*")
	if resp.StatusCode != 404 {
		t.Errorf("missing asset: %d, want 404", resp.StatusCode)
	}
}

func TestVirtualHostsRoutesRedirectsHeaders(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a/index.html": "site A", "b/index.html": "site B", "d/index.html": "default site",
		"portico.toml": `
[server]
access_log = "off"

[[site]]
name = "a"
listen = ["127.0.0.1:0"]
hosts = ["a.test"]
headers = { "X-Frame-Options" = "DENY" }
  [[site.route]]
  path = "/"
  static = { root = "a" }
  [[site.route]]
  path = "/old/"
  redirect = { to = "https://a.test/new/{path}", status = 301 }

[[site]]
name = "b"
listen = ["127.0.0.1:0"]
hosts = ["*.b.test"]
  [[site.route]]
  path = "/"
  static = { root = "b" }
`})
	// Both sites name "127.0.0.1:0", the same listener: one port, two sites.
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	_, body := get(t, p.URLs[0], "Host", "a.test")
	resp, _ := get(t, p.URLs[0], "Host", "a.test")
	if body != "site A" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("a.test: %q, X-Frame-Options %q", body, resp.Header.Get("X-Frame-Options"))
	}
	resp, _ = get(t, p.URLs[0]+"old/x/y?q=1", "Host", "a.test")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://a.test/new/x/y" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = get(t, p.URLs[0], "Host", "other.test")
	if resp.StatusCode != 404 {
		t.Errorf("unknown host without default site: %d, want 404", resp.StatusCode)
	}
	resp, body = get(t, p.URLs[0], "Host", "www.b.test")
	if body != "site B" || resp.Header.Get("X-Frame-Options") != "" {
		t.Errorf("www.b.test: %q, X-Frame-Options %q (site headers must not leak across sites)", body, resp.Header.Get("X-Frame-Options"))
	}
}

func TestSharedListenerDefaultSite(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	writeFiles(t, dir, map[string]string{
		"a/index.html": "site A", "d/index.html": "default site",
		"portico.toml": fmt.Sprintf(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:%[1]d"]
hosts = ["a.test"]
  [[site.route]]
  path = "/"
  static = { root = "a" }
[[site]]
name = "fallback"
listen = ["127.0.0.1:%[1]d"]
  [[site.route]]
  path = "/"
  static = { root = "d" }
`, port)})
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	if !strings.Contains(p.Stdout.String(), "(site a.test, fallback)") {
		t.Errorf("serving line: %q", p.Stdout.String())
	}
	if _, body := get(t, p.URLs[0], "Host", "A.TEST:80"); body != "site A" {
		t.Errorf("a.test: %q", body)
	}
	if _, body := get(t, p.URLs[0], "Host", "unknown.test"); body != "default site" {
		t.Errorf("default: %q", body)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func staticConfig(extraServer string) string {
	return `
[server]
access_log = "off"
` + extraServer + `
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`
}

func TestFramingContentLengthAndTransferEncoding(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "home"})
	p := startConfig(t, dir, staticConfig(""), 1)
	// RFC 9112 6.3: CL + TE: answered (or 400) and the connection closed,
	// so the smuggled second request is never served.
	out := rawRequest(t, p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	if n := strings.Count(out, "HTTP/1.1 "); n != 1 {
		t.Errorf("CL+TE: got %d responses, want 1 (connection must close):\n%s", n, out)
	}
	if strings.Contains(out, "smuggled") {
		t.Errorf("smuggled request answered:\n%s", out)
	}
	// Obfuscated Transfer-Encoding is refused.
	out = rawRequest(t, p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\nabcd")
	if !strings.HasPrefix(out, "HTTP/1.1 4") && !strings.HasPrefix(out, "HTTP/1.1 5") {
		t.Errorf("obfuscated TE: %q", out)
	}
	// Two different Content-Lengths are refused.
	out = rawRequest(t, p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde")
	if !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Errorf("double CL: %q", out)
	}
}

func TestHeaderAndBodyLimits(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "home"})
	p := startConfig(t, dir, staticConfig(`max_header_bytes = "8KB"
max_body_size = "1KB"`), 1)
	resp, _ := get(t, p.URL("/"), "X-Big", strings.Repeat("a", 64<<10))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big header: %d, want 431", resp.StatusCode)
	}
	resp, _ = do(t, "POST", p.URL("/"), strings.NewReader(strings.Repeat("b", 4096)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %d, want 413", resp.StatusCode)
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "home"})
	p := startConfig(t, dir, staticConfig(`read_header_timeout = "1s"`), 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	// 50 slowloris connections trickle headers; a normal client is served
	// meanwhile, and the slow ones are closed after the timeout.
	var conns []net.Conn
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		conns = append(conns, c)
	}
	if resp, body := get(t, p.URL("/")); resp.StatusCode != 200 || body != "home" {
		t.Errorf("normal client during slowloris: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("slow connections closed after %v, want about 1s", d)
	}
}

func TestGracefulShutdownFinishesRequestsInFlight(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		w.Write([]byte("slow done"))
	}))
	defer slow.Close()
	dir := t.TempDir()
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
shutdown_timeout = "10s"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = [%q] }
`, slow.URL), 1)
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Get(p.URL("/slow"))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, err = io_Copy(b, resp)
		done <- result{resp.StatusCode, b.String(), err}
	}()
	time.Sleep(300 * time.Millisecond)
	p.Signal(syscall.SIGTERM)
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "slow done" {
		t.Errorf("request in flight during SIGTERM: %d %q %v", r.code, r.body, r.err)
	}
	if code := p.Wait(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d, want 0\n%s", code, p.Stderr)
	}
	// New connections are refused once it has stopped.
	if _, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/"), time.Second); err == nil {
		t.Errorf("still accepting after shutdown")
	}
}

func TestReloadOnSIGHUPWithoutDroppingRequests(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfg := func(root string) string {
		return fmt.Sprintf(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:%d"]
  [[site.route]]
  path = "/"
  static = { root = %q }
`, port, root)
	}
	writeFiles(t, dir, map[string]string{"one/index.html": "one", "two/index.html": "two"})
	p := startConfig(t, dir, cfg("one"), 1)
	if _, body := get(t, p.URL("/")); body != "one" {
		t.Fatalf("before reload: %q", body)
	}
	// A steady load of requests across the reloads: none may fail.
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(p.URL("/"))
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				io_Copy(new(strings.Builder), resp)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	writeFiles(t, dir, map[string]string{"portico.toml": cfg("two")})
	p.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, func() bool { _, b := get(t, p.URL("/")); return b == "two" })
	// A broken config leaves the old one running and says why.
	writeFiles(t, dir, map[string]string{"portico.toml": cfg("two") + "\nbogus = 1\n"})
	p.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "reload failed") })
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if _, body := get(t, p.URL("/")); body != "two" {
		t.Errorf("after failed reload: %q, want the old config still serving", body)
	}
	if !strings.Contains(p.Stderr.String(), "bogus") {
		t.Errorf("reload error does not name the problem: %s", p.Stderr)
	}
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed across reloads", failures.Load(), total.Load())
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAccessLogJSONToFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "home", "portico.toml": `
[server]
access_log = "logs/access.log"
log_format = "json"
[[site]]
name = "main"
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`})
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	get(t, p.URL("/?x=1"), "User-Agent", "e2e-agent")
	var line string
	waitFor(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "logs/access.log"))
		line = string(b)
		return strings.Contains(line, "\n")
	})
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(line, "\n", 2)[0]), &m); err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	if m["uri"] != "/?x=1" || m["status"] != float64(200) || m["user_agent"] != "e2e-agent" || m["site"] != "main" {
		t.Errorf("access log: %v", m)
	}
}

func TestCombinedAccessLogOnStdout(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "home"})
	p := startConfig(t, dir, strings.Replace(staticConfig(""), `access_log = "off"`, `access_log = "stdout"`, 1), 1)
	get(t, p.URL("/index.html"), "User-Agent", "combined-agent")
	waitFor(t, 5*time.Second, func() bool {
		return strings.Contains(p.Stdout.String(), `"GET /index.html HTTP/1.1" 200 4 "-" "combined-agent"`)
	})
}

func TestTLSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t, "tls.test")
	writeFiles(t, dir, map[string]string{"cert.pem": certPEM, "key.pem": keyPEM, "public/index.html": "secure", "portico.toml": `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
hosts = ["tls.test"]
tls = { cert = "cert.pem", key = "key.pem" }
  [[site.route]]
  path = "/"
  static = { root = "public" }
`})
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	if !strings.HasPrefix(p.URLs[0], "https://") {
		t.Fatalf("TLS listener URL %q", p.URLs[0])
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "tls.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", p.URL("/"), nil)
	req.Host = "tls.test"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := new(strings.Builder)
	io_Copy(b, resp)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || b.String() != "secure" {
		t.Errorf("TLS: proto %s body %q, want HTTP/2 and secure", resp.Proto, b.String())
	}
}

func selfSigned(t *testing.T, host string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func TestAdminEndpoints(t *testing.T) {
	dir := t.TempDir()
	adminPort := freePort(t)
	writeFiles(t, dir, map[string]string{"public/index.html": "home", "portico.toml": fmt.Sprintf(`
[server]
access_log = "off"
admin = "127.0.0.1:%d"
[[site]]
name = "main"
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, adminPort)})
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stdout.String(), "admin on") })
	get(t, p.URL("/"))
	if resp, body := get(t, admin+"/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	if _, body := get(t, admin+"/metrics"); !strings.Contains(body, `portico_requests_total{code="200",site="main"}`) {
		t.Errorf("metrics lack the request counter:\n%.2000s", body)
	}
	if resp, body := do(t, "POST", admin+"/reload", nil, "Content-Type", "application/json"); resp.StatusCode != 200 {
		t.Errorf("POST /reload: %d %s", resp.StatusCode, body)
	}
	code, out, errOut := runPortico(t, dir, "reload", "-c", "portico.toml")
	if code != 0 || strings.TrimSpace(out) != "reloaded" {
		t.Errorf("portico reload: exit %d %q %q", code, out, errOut)
	}
}

func TestTraversalNeverEscapesRoot(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "home", "secret.txt": "TOP SECRET", "public/.env": "DB_PASSWORD=x"})
	os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(dir, "public", "link.txt"))
	p := startConfig(t, dir, staticConfig(""), 1)
	for _, path := range []string{
		"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
		"/%252e%252e/secret.txt", "/..\\secret.txt", "/..%5csecret.txt", "/%00/../secret.txt", "/index.html%00.txt",
		"/.%2e/secret.txt", "/link.txt", "/.env", "/%2eenv", "/%c0%ae%c0%ae/secret.txt", "/;/../secret.txt",
	} {
		out := rawRequest(t, p, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(out, "TOP SECRET") || strings.Contains(out, "DB_PASSWORD") || strings.HasPrefix(out, "HTTP/1.1 200") {
			t.Errorf("GET %s escaped the root:\n%.300s", path, out)
		}
	}
}

func TestConfigFileInsideRootIsNeverServed(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "home", "sites/extra.toml": "# no sites\n", "portico.toml": `
[server]
access_log = "off"
include = ["sites/*.toml"]
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "." }
`})
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	if resp, body := get(t, p.URL("/")); resp.StatusCode != 200 || body != "home" {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body)
	}
	for _, path := range []string{"/portico.toml", "/sites/extra.toml", "/portico.toml.", "/portico.toml/", "/PORTICO.toml"} {
		if resp, body := get(t, p.URL(path)); resp.StatusCode == 200 || strings.Contains(body, "[server]") {
			t.Errorf("GET %s: %d, config served", path, resp.StatusCode)
		}
	}
}

func TestWriteTimeoutMovesWithProgress(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 4<<20) // 64 MiB
	writeFiles(t, dir, map[string]string{"public/big.bin": big})
	p := startConfig(t, dir, staticConfig(`write_timeout = "1s"`), 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")

	// A client that stops reading is cut off after about write_timeout.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	stalled.Write([]byte("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
	time.Sleep(3 * time.Second)
	stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.Copy(io.Discard, stalled)
	if n >= int64(len(big)) {
		t.Errorf("stalled client got all %d bytes; want it cut off", n)
	}

	// A slow client that keeps reading is not cut, however long it takes.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	var got int64
	buf := make([]byte, 1<<20)
	for {
		k, err := slow.Read(buf)
		got += int64(k)
		if err != nil {
			break
		}
		if time.Since(start) < 2500*time.Millisecond {
			time.Sleep(20 * time.Millisecond) // about 50 MB/s at most
		}
	}
	if got < int64(len(big)) {
		t.Errorf("slow but steady client got %d of %d bytes after %v", got, len(big), time.Since(start))
	}
}

func TestOpenWithoutBrowserSaysSo(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "home"})
	p := startPortico(t, dir, 1, "serve", "--open", "-b", "127.0.0.1", "0")
	_ = p
	waitFor(t, 5*time.Second, func() bool {
		s := p.Stderr.String()
		// Either a browser opener ran, or the user is told to open the URL.
		return strings.Contains(s, "--open") || strings.Contains(s, "open http") || hasOpener()
	})
}

func hasOpener() bool {
	for _, c := range []string{"xdg-open", "sensible-browser", "x-www-browser"} {
		if _, err := exec.LookPath(c); err == nil {
			return true
		}
	}
	return false
}

func TestStripPrefixAndIdleTimeout(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.URL.EscapedPath() + "?" + r.URL.RawQuery))
	}))
	defer echo.Close()
	dir := t.TempDir()
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
idle_timeout = "1s"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/api/"
  strip_prefix = true
  proxy = { upstreams = [%[1]q] }
  [[site.route]]
  path = "/keep/"
  proxy = { upstreams = [%[1]q] }
`, echo.URL), 1)
	for path, want := range map[string]string{
		"/api/users?x=1": "/users?x=1",
		"/api":           "/?",
		"/api/a%2Fb":     "/a%2Fb?",
		"/keep/users":    "/keep/users?",
	} {
		if _, body := get(t, p.URL(path)); body != want {
			t.Errorf("GET %s: upstream saw %q, want %q", path, body, want)
		}
	}
	// An idle keep-alive connection is closed after idle_timeout.
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /keep/x HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, c) // returns when the server closes the connection
	if d := time.Since(start); d < 800*time.Millisecond || d > 4*time.Second {
		t.Errorf("idle connection closed after %v, want about 1s", d)
	}
}
