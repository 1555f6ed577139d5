package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// startHTTP2Site runs a TLS site with static files under root and a
// proxy route /echo/ to an upstream that answers a POST with its body
// (after ?sleep= if asked), and returns it with an HTTP/2 client.
func startHTTP2Site(t *testing.T, dir string, port int, root string) (*Proc, *http.Client, func(root string) string) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		b, err := io.ReadAll(r.Body) // all of it before answering: HTTP/1 may cut a body once the answer starts
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(upstream.Close)
	cert, key := selfSigned(t, "localhost")
	writeFiles(t, dir, map[string]string{"c.pem": cert, "c.key": key, "one/index.html": "one", "two/index.html": "two"})
	p := startConfig(t, dir, http2Config(port, root, upstream.URL), 1)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return p, &http.Client{Transport: tr, Timeout: 20 * time.Second}, func(root string) string { return http2Config(port, root, upstream.URL) }
}

func http2Config(port int, root, upstream string) string {
	return fmt.Sprintf(`
[server]
access_log = "off"
shutdown_timeout = "30s"
[[site]]
listen = ["127.0.0.1:%d"]
tls = { cert = "c.pem", key = "c.key" }
http3 = false
  [[site.route]]
  path = "/"
  static = { root = %q }
  [[site.route]]
  path = "/echo/"
  proxy = { upstreams = [%q] }
`, port, root, upstream)
}

// Over HTTP/2 a real client (Go's) gets pages and has its
// POST bodies (small, and larger than the flow-control windows) arrive
// whole, many at once on one connection, across a reload.
func TestHTTP2PagesPostsReload(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p, cl, cfg := startHTTP2Site(t, dir, port, "one")
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	check := func(want string) {
		t.Helper()
		resp, err := cl.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != want {
			t.Fatalf("GET /: %s %q, want HTTP/2 %q", resp.Proto, b, want)
		}
	}
	check("one")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i%26)}, []int{0, 1, 1000, 70 << 10, 3 << 20}[i%5])
			resp, err := cl.Post(base+"/echo/", "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.ProtoMajor != 2 || !bytes.Equal(got, body) {
				errs <- fmt.Errorf("POST of %d bytes: %s, %d bytes back, %v", len(body), resp.Proto, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	writeFiles(t, dir, map[string]string{"portico.toml": cfg("two")})
	p.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, func() bool {
		resp, err := cl.Get(base + "/")
		if err != nil {
			t.Fatal(err) // the connection must survive the reload
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b) == "two"
	})
	check("two")
}

// Stopping portico reaches HTTP/2 connections:
// an idle one gets GOAWAY and closes at once, a request in flight is
// answered before the process exits (shutdown_timeout is 30s).
func TestHTTP2GracefulStop(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p, _, _ := startHTTP2Site(t, dir, port, "one")
	idle := dialH2(t, port)
	busy := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 20 * time.Second}
	answered := make(chan string, 1)
	go func() {
		resp, err := busy.Post(fmt.Sprintf("https://127.0.0.1:%d/echo/?sleep=1s", port), "text/plain", strings.NewReader("in flight"))
		if err != nil {
			answered <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- string(b)
	}()
	time.Sleep(300 * time.Millisecond) // the request is at the upstream
	start := time.Now()
	p.Signal(syscall.SIGTERM)
	fr := http2.NewFramer(idle, idle)
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("idle connection: no GOAWAY before %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY %v, want NO_ERROR", ga.ErrCode)
			}
			break
		}
	}
	if got := <-answered; got != "in flight" {
		t.Fatalf("request in flight during stop: %q", got)
	}
	if code := p.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("stop took %v: HTTP/2 connections were not told to go away", d)
	}
}

// A request with a connection-specific header field ends the connection
// with GOAWAY PROTOCOL_ERROR (it used to be answered 400), and the
// requests before it on the connection were answered.
func TestHTTP2ConnectionHeaderEndsConnection(t *testing.T) {
	port := freePort(t)
	startHTTP2Site(t, t.TempDir(), port, "one")
	c := dialH2(t, port)
	fr := http2.NewFramer(c, c)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	request := func(stream uint32, extra ...string) {
		block.Reset()
		fields := append([]string{":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/"}, extra...)
		for i := 0; i < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
	}
	request(1)
	request(3, "connection", "keep-alive")
	answered := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY PROTOCOL_ERROR: %v", err)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			if f.StreamID == 3 {
				t.Fatal("the request with connection: keep-alive was answered")
			}
			answered = true
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeProtocol || f.LastStreamID != 1 {
				t.Fatalf("GOAWAY %v last stream %d, want PROTOCOL_ERROR last stream 1", f.ErrCode, f.LastStreamID)
			}
			if !answered {
				t.Log("stream 1 not answered before the GOAWAY (allowed: it was cut)")
			}
			return
		}
	}
}

// dialH2 opens a TLS connection with ALPN h2 and sends the preface and
// an empty SETTINGS frame.
func dialH2(t *testing.T, port int) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	http2.NewFramer(c, c).WriteSettings()
	return c
}

// A real browser (headless chromium) loads a page over HTTPS and HTTP/2
// that fetches 30 files at once on the connection, one of them 2 MiB
// (beyond every flow-control window, so the engine must wait for the
// browser's WINDOW_UPDATEs), and POSTs a body through the proxy route;
// the page writes what it got into the DOM.
func TestHTTP2InBrowser(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	startHTTP2Site(t, dir, port, "one")
	files := map[string]string{"one/big.bin": strings.Repeat("0123456789abcdef", 128<<10)}
	for i := 1; i <= 30; i++ {
		files[fmt.Sprintf("one/f%d.txt", i)] = fmt.Sprint(i)
	}
	files["one/page.html"] = `<!doctype html><html><body><div id="out">pending</div><script>
const small = Array.from({length: 30}, (_, i) => fetch('/f' + (i + 1) + '.txt').then(r => r.text()));
const big = fetch('/big.bin').then(r => r.arrayBuffer()).then(b => 'big=' + b.byteLength);
const post = fetch('/echo/', {method: 'POST', body: 'posted'.repeat(1000)}).then(r => r.text()).then(t => 'post=' + t.length);
Promise.all([Promise.all(small), big, post]).then(([s, b, p]) => {
  const proto = performance.getEntriesByType('navigation')[0].nextHopProtocol;
  document.getElementById('out').textContent = 'done proto=' + proto + ' ' + s.join(',') + ' ' + b + ' ' + p;
}, e => { document.getElementById('out').textContent = 'error ' + e; });
</script></body></html>`
	writeFiles(t, dir, files)
	dom := runChromium(t, "--ignore-certificate-errors", "--virtual-time-budget=20000", "--dump-dom",
		fmt.Sprintf("https://127.0.0.1:%d/page.html", port))
	var nums []string
	for i := 1; i <= 30; i++ {
		nums = append(nums, fmt.Sprint(i))
	}
	want := "done proto=h2 " + strings.Join(nums, ",") + fmt.Sprintf(" big=%d post=6000", 2<<20)
	if !strings.Contains(dom, want) {
		t.Fatalf("the page says:\n%s\nwant %q", dom, want)
	}
}
