package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPathsAsNginx sends the same odd request paths to nginx (answering
// its normalised $uri) and to portico (proxying to an app that answers the
// path it received, decoded), and compares: portico routes and forwards
// the path nginx would, and refuses (400) what nginx refuses. The few
// departures are portico's documented choices: an encoded slash is never
// a separator (so never merged, and a ".." behind one is refused rather
// than resolved), and neither a backslash nor a ';' can hide a "..".
func TestPathsAsNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("nginx comparison (-short)")
	}
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				nginxBin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatal("nginx not found: .ci/run installs it (nginx-light)")
	}
	nginxAddr := startNginxURI(t, nginxBin)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path+"\n")
	})}
	go app.Serve(ln)
	t.Cleanup(func() { app.Close() })
	p := startConfig(t, t.TempDir(), fmt.Sprintf(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = ["http://%s"] }
`, ln.Addr()), 1)

	tests := []struct{ path, nginx, portico string }{
		{"/a/../b", "200 /b", "200 /b"},
		{"//a//b/", "200 /a/b/", "200 /a/b/"},
		{"/a//..//b", "200 /b", "200 /b"},
		{"/a/./b/../../c", "200 /c", "200 /c"},
		{"/a/b/..", "200 /a/", "200 /a/"},
		{"/a/.", "200 /a/", "200 /a/"},
		{"/./", "200 /", "200 /"},
		{"/%2e", "200 /", "200 /"},
		{"/a/%2e%2e/b", "200 /b", "200 /b"},
		{"/a/%2E%2e/", "200 /", "200 /"},
		{"/a;/../b", "200 /b", "200 /b"},
		{"/..a/b..", "200 /..a/b..", "200 /..a/b.."},
		{"/.../x", "200 /.../x", "200 /.../x"},
		{"/a%2Fb", "200 /a/b", "200 /a/b"},
		{"/..", "400", "400"},
		{"/.%2e/x", "400", "400"},
		{"/a/b/c/../../../..", "400", "400"},
		{"/x%00", "400", "400"},
		{"/%2F..", "400", "400"},
		// Departures.
		{"/a%2F%2Fb", "200 /a/b", "200 /a//b"},
		{"/a%2F..%2Fb", "200 /b", "400"},
		{"/x/%2e%2e%2fy", "200 /y", "400"},
		{"/a\\..\\b", "200 /a\\..\\b", "400"},
		{"/..;/x", "200 /..;/x", "400"},
	}
	for _, tc := range tests {
		raw := "GET " + tc.path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		if got := statusAndBody(rawTo(t, nginxAddr, raw, 3*time.Second)); got != tc.nginx {
			t.Errorf("nginx GET %s: %q, want %q", tc.path, got, tc.nginx)
		}
		if got := statusAndBody(rawRequest(t, p, raw)); got != tc.portico {
			t.Errorf("portico GET %s: %q, want %q", tc.path, got, tc.portico)
		}
	}
}

// statusAndBody reduces a raw response to "200 body" (its first body
// line) or the status alone when it is not 200.
func statusAndBody(resp string) string {
	status := strings.Fields(resp + " ?")[1]
	if status != "200" {
		return status
	}
	_, body, _ := strings.Cut(resp, "\r\n\r\n")
	line, _, _ := strings.Cut(body, "\n")
	return status + " " + line
}

// startNginxURI runs nginx on a free loopback port, answering every
// request with its normalised path ($uri), until the test ends.
func startNginxURI(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  server { listen %[2]s; location / { return 200 "$uri\n"; } }
}
`, dir, addr)
	writeFiles(t, dir, map[string]string{"nginx.conf": conf, "tmp/.keep": ""})
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %s\n%s", out.String(), b)
		}
	}
}
