package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// gunicornApp is one gunicorn process serving examples/three-apps/app.py.
type gunicornApp struct {
	Addr string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGunicorn runs `gunicorn app:application` from examples/three-apps
// with INSTANCE=name, in its own process group, and waits until it answers.
func startGunicorn(t *testing.T, name string) *gunicornApp {
	t.Helper()
	bin, err := exec.LookPath("gunicorn")
	if err != nil {
		t.Skip("gunicorn not installed")
	}
	dir, err := filepath.Abs("../examples/three-apps")
	if err != nil {
		t.Fatal(err)
	}
	g := &gunicornApp{Addr: freeAddr(t), out: &syncBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(bin, "--workers", "1", "--bind", g.Addr, "--chdir", dir, "app:application")
	g.cmd.Env = append(os.Environ(), "INSTANCE="+name)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); close(g.done) }()
	t.Cleanup(g.Kill)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + g.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return g
		}
		select {
		case <-g.done:
			t.Fatalf("gunicorn %s exited: %s", name, g.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gunicorn %s did not start: %s", name, g.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends gunicorn's whole process group (master and worker) at once.
func (g *gunicornApp) Kill() {
	select {
	case <-g.done:
		return
	default:
	}
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-g.done:
	case <-time.After(5 * time.Second):
	}
}

func startThreeApps(t *testing.T) (*Proc, []*gunicornApp) {
	t.Helper()
	var apps []*gunicornApp
	var ups []string
	for _, n := range []string{"1", "2", "3"} {
		g := startGunicorn(t, n)
		apps = append(apps, g)
		ups = append(ups, fmt.Sprintf("%q", "http://"+g.Addr))
	}
	cfg := `
[server]
access_log = "off"

[[site]]
listen = ["127.0.0.1:0"]

  [[site.route]]
  path = "/"
  [site.route.proxy]
  upstreams = [` + strings.Join(ups, ", ") + `]
  health = { path = "/healthz", interval = "200ms", timeout = "1s" }

  [[site.route]]
  path = "/api/"
  strip_prefix = true
  [site.route.proxy]
  upstreams = [` + ups[0] + `]
`
	return startConfig(t, t.TempDir(), cfg, 1), apps
}

func TestProxyThreeGunicornApps(t *testing.T) {
	p, apps := startThreeApps(t)

	t.Run("spread", func(t *testing.T) {
		seen := map[string]int{}
		for range 9 {
			resp, body := get(t, p.URL("/"))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen[strings.Fields(body)[3]]++
		}
		if len(seen) != 3 || seen["1"] != 3 || seen["2"] != 3 || seen["3"] != 3 {
			t.Errorf("9 requests went to %v, want 3 to each instance", seen)
		}
	})

	t.Run("forwarding headers", func(t *testing.T) {
		resp, body := get(t, p.URL("/who"), "Accept", "application/json",
			"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.test",
			"Connection", "X-Forwarded-For")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var info map[string]any
		if err := json.Unmarshal([]byte(body), &info); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		host := strings.TrimPrefix(strings.TrimSuffix(p.URLs[0], "/"), "http://")
		want := map[string]string{"x_forwarded_for": "127.0.0.1", "x_forwarded_host": host,
			"x_forwarded_proto": "http", "via": "1.1 portico", "host": host}
		for k, v := range want {
			if info[k] != v {
				t.Errorf("%s: got %v, want %q", k, info[k], v)
			}
		}
	})

	t.Run("strip prefix", func(t *testing.T) {
		resp, body := get(t, p.URL("/api/x/y"), "Accept", "application/json")
		if resp.StatusCode != 200 || !strings.Contains(body, `"path": "/x/y"`) {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})

	t.Run("kill one under load", func(t *testing.T) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		defer hc.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var ok, failed atomic.Int64
		var first atomic.Value
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					resp, err := hc.Get(p.URL("/"))
					if err != nil {
						failed.Add(1)
						first.CompareAndSwap(nil, err.Error())
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failed.Add(1)
						first.CompareAndSwap(nil, resp.Status)
						continue
					}
					ok.Add(1)
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		apps[1].Kill()
		wg.Wait()
		if failed.Load() != 0 || ok.Load() == 0 {
			t.Errorf("%d ok, %d failed (first: %v)", ok.Load(), failed.Load(), first.Load())
		}
		// The dead instance is out of rotation: the others answer.
		for range 6 {
			_, body := get(t, p.URL("/"))
			if strings.Contains(body, "instance 2 ") {
				t.Errorf("killed instance answered: %s", body)
			}
		}
		if !strings.Contains(p.Stderr.String()+p.Stdout.String(), "upstream down") {
			t.Errorf("no \"upstream down\" log line:\n%s", p.Stderr)
		}
	})

	t.Run("all down is 502", func(t *testing.T) {
		apps[0].Kill()
		apps[2].Kill()
		resp, body := get(t, p.URL("/"), "Accept", "text/html")
		if resp.StatusCode != 502 || !strings.Contains(body, "502 Bad Gateway") {
			t.Errorf("got %d %q, want the 502 error page", resp.StatusCode, body)
		}
	})
}

// TestProxyEscapedPath: through the real binary, an encoded path reaches the
// upstream as received (Apache CVE-2024-38473), with and without
// strip_prefix; a path with dot segments or repeated slashes reaches it
// normalised, as portico routed it.
func TestProxyEscapedPath(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "uri="+r.RequestURI)
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	u := fmt.Sprintf("%q", "http://"+ln.Addr().String())
	p := startConfig(t, t.TempDir(), `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = [`+u+`] }
  [[site.route]]
  path = "/api/"
  strip_prefix = true
  proxy = { upstreams = [`+u+`] }
`, 1)
	cases := []struct{ target, want string }{
		{"/a%2Fb%3Fc%23d?q=1", "/a%2Fb%3Fc%23d?q=1"},
		{"/x.php%3F.css", "/x.php%3F.css"},
		{"/api/a%2Fb%3F", "/a%2Fb%3F"},
		{"/api/caf%C3%A9%20x%2F", "/caf%C3%A9%20x%2F"},
		// The path portico routed on, normalised (dot segments resolved,
		// slashes merged), is the one forwarded, the client's escapes and
		// query kept; strip_prefix then removes the prefix of that path.
		{"/x/../a%2Fb/./c//d?q=/../", "/a%2Fb/c/d?q=/../"},
		{"/static/%2e%2e/api/a%3F", "/a%3F"},
		{"//api//v1/../users", "/users"},
		{"/api/v1/..", "/"},
	}
	for _, c := range cases {
		out := rawRequest(t, p, "GET "+c.target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.Contains(out, "uri="+c.want) {
			t.Errorf("GET %s: got %q, want uri=%s", c.target, out, c.want)
		}
	}
}

// TestProxyStreamsThroughBinary: WebSocket upgrades and server-sent events
// pass through the real server (its ResponseWriter must keep Hijacker and
// Flusher).
func TestProxyStreamsThroughBinary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(ws, &msg) != nil {
				return
			}
			if websocket.Message.Send(ws, "echo:"+msg) != nil {
				return
			}
		}
	}))
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	up := &http.Server{Handler: mux}
	go up.Serve(ln)
	t.Cleanup(func() { close(release); up.Close() })
	p := startConfig(t, t.TempDir(), `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = ["http://`+ln.Addr().String()+`"] }
`, 1)

	t.Run("websocket", func(t *testing.T) {
		ws, err := websocket.Dial("ws"+strings.TrimPrefix(p.URL("/ws"), "http"), "", p.URL("/"))
		if err != nil {
			t.Fatalf("websocket through portico: %v", err)
		}
		defer ws.Close()
		ws.SetDeadline(time.Now().Add(5 * time.Second))
		for _, m := range []string{"a", "bb"} {
			if err := websocket.Message.Send(ws, m); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := websocket.Message.Receive(ws, &got); err != nil {
				t.Fatal(err)
			}
			if got != "echo:"+m {
				t.Errorf("got %q, want %q", got, "echo:"+m)
			}
		}
	})

	t.Run("sse first event prompt", func(t *testing.T) {
		start := time.Now()
		resp, err := client.Get(p.URL("/events"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		n, err := io.ReadAtLeast(resp.Body, buf, len("data: first\n\n"))
		if err != nil {
			t.Fatalf("read: %v (%q)", err, buf[:n])
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("first event after %v, want it at once", d)
		}
		if string(buf[:n]) != "data: first\n\n" {
			t.Errorf("got %q", buf[:n])
		}
	})
}

// TestProxyBodyLimit: a chunked upload past max_body_size on a proxy route
// is 413, and does not take the upstream out of rotation.
func TestProxyBodyLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d %v", n, err)
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	p := startConfig(t, t.TempDir(), `
[server]
access_log = "off"
max_body_size = "1MB"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = ["http://`+ln.Addr().String()+`"] }
`, 1)
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 64<<10)
		for i := 0; i < 64; i++ { // 4 MB, length unknown: chunked
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", p.URL("/upload"), pr)
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized chunked upload: status %d, want 413", resp.StatusCode)
		}
	}
	pr.Close()
	resp, body := do(t, "POST", p.URL("/small"), strings.NewReader("hello"))
	if resp.StatusCode != 200 || body != "got 5 <nil>" {
		t.Errorf("after the 413: got %d %q", resp.StatusCode, body)
	}
	if strings.Contains(p.Stderr.String(), "upstream down") {
		t.Errorf("upstream marked down by a client's body:\n%s", p.Stderr)
	}
}

// TestProxyEarlyHintsAndContinue: 103 Early Hints and 100-continue uploads
// through the real server (its ResponseWriter must pass 1xx through and
// still send the final status).
func TestProxyEarlyHintsAndContinue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "got %d", len(b))
			return
		}
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "page")
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	p := startConfig(t, t.TempDir(), `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = ["http://`+ln.Addr().String()+`"] }
`, 1)
	out := rawRequest(t, p, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	i103, i200 := strings.Index(out, "HTTP/1.1 103"), strings.Index(out, "HTTP/1.1 200")
	if i103 < 0 || i200 < i103 || !strings.HasSuffix(out, "page") {
		t.Errorf("want a 103 then the 200 page:\n%s", out)
	}
	out = rawRequest(t, p, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	if !strings.Contains(out, "200 OK") || !strings.HasSuffix(out, "got 5") {
		t.Errorf("100-continue upload:\n%s", out)
	}
}
