package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startHaproxy runs Debian's haproxy in front of backend, sending the
// PROXY protocol v2 header, and returns its frontend address.
func startHaproxy(t *testing.T, backend string) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if testing.Short() {
			t.Skip("haproxy not installed (-short)")
		}
		t.Fatal("haproxy not installed: .ci/run installs it")
	}
	front := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind %s
  default_backend be
backend be
  server portico %s send-proxy-v2
`, front, backend)), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-f", cfg, "-db")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	waitFor(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return front
}

// TestAccessProxyProtocolHaproxy: behind haproxy with send-proxy-v2, the
// client address is the one haproxy saw, for CGI REMOTE_ADDR, allow
// lists and the access log, on both engines; a PROXY header from a peer
// that is not trusted closes the connection.
func TestAccessProxyProtocolHaproxy(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "fast page", "cgi-bin/env": envScript})
	cgiDir(dir, "cgi-bin/env")
	p := startConfig(t, dir, `
[server]
trusted_proxies = ["127.0.0.1"]
[[site]]
listen = ["127.0.0.1:0"]
proxy_protocol = true
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
  [[site.route]]
  path = "/office/"
  static = { root = "public" }
  allow = ["127.0.0.2"]
`, 1)
	backend := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	front := "http://" + startHaproxy(t, backend)
	c2, c3 := dialFrom("127.0.0.2"), dialFrom("127.0.0.3")
	if status, body := getFrom(t, c2, front+"/cgi-bin/env"); status != 200 || !strings.Contains(body, "remote=127.0.0.2 ") {
		t.Errorf("CGI through haproxy: %d %q, want REMOTE_ADDR 127.0.0.2", status, body)
	}
	if status, body := getFrom(t, c2, front+"/"); status != 200 || body != "fast page" {
		t.Errorf("static through haproxy: %d %q", status, body)
	}
	if status, _ := getFrom(t, c2, front+"/office/"); status != 200 {
		t.Errorf("allowed client through haproxy: %d", status)
	}
	if status, _ := getFrom(t, c3, front+"/office/"); status != 403 {
		t.Errorf("other client through haproxy: %d, want 403", status)
	}
	waitFor(t, 5*time.Second, func() bool {
		return strings.Contains(p.Stdout.String(), "\n127.0.0.3 - -") && strings.Contains(p.Stdout.String(), `127.0.0.2 - - [`)
	})
	if strings.Contains(p.Stdout.String(), "\n127.0.0.1 - -") {
		t.Errorf("access log shows haproxy's address:\n%s", p.Stdout)
	}

	// A PROXY header from an untrusted peer (127.0.0.2 dials portico
	// itself): the connection is closed without an answer.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", backend)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	got, err := io.ReadAll(conn)
	if len(got) != 0 || err != nil {
		t.Errorf("untrusted PROXY header: read %q, %v; want the connection closed", got, err)
	}
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "PROXY header refused") })
	// A plain request from that peer is served as usual.
	if status, body := getFrom(t, c2, p.URL("/cgi-bin/env")); status != 200 || !strings.Contains(body, "remote=127.0.0.2 ") {
		t.Errorf("plain request on the proxy_protocol listener: %d %q", status, body)
	}
}
