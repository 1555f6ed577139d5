package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// noDecodeClient sends Accept-Encoding only as a test sets it and never decodes.
var noDecodeClient = &http.Client{
	Transport:     &http.Transport{DisableCompression: true},
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func fetchRaw(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noDecodeClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, b
}

// decoder returns a reader of r decoded from encoding.
func decoder(t *testing.T, encoding string, r io.Reader) io.Reader {
	t.Helper()
	switch encoding {
	case "":
		return r
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	t.Fatalf("unexpected Content-Encoding %q", encoding)
	return nil
}

func decode(t *testing.T, encoding string, body []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(decoder(t, encoding, bytes.NewReader(body)))
	if err != nil {
		t.Fatalf("decoding %s: %v", encoding, err)
	}
	return out
}

// jsFile is n bytes of JavaScript-like text (compressible, not trivially).
func jsFile(n int) string {
	rng := rand.New(rand.NewPCG(7, 11))
	words := []string{"function", "return", "const", "let", "this", "if", "else", "=>", "{", "}", "(", ")", ";\n", "document", "window", "value", "index", "length", "await", "export"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
		if rng.IntN(5) == 0 {
			b.WriteString(strconv.Itoa(rng.IntN(1 << 20)))
		}
	}
	return b.String()[:n]
}

// A 100 KiB JS file, fetched with each encoding, decodes to the file: on
// the first request (compressed then) and the next ones (the cached
// variant, through the fast path), and a range gets the identity bytes.
func TestCompressStaticJSEachEncoding(t *testing.T) {
	dir := t.TempDir()
	js := jsFile(100 << 10)
	writeFiles(t, dir, map[string]string{"www/app.js": js, "www/tiny.js": "let a = 1;\n", "www/logo.png": strings.Repeat("\x89PNG", 1000)})
	p := startConfig(t, dir, `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
compress = ["zstd", "br", "gzip"]
  [[site.route]]
  path = "/"
  static = { root = "www" }
`, 1)
	var plainETag string
	for _, enc := range []string{"gzip", "br", "zstd", ""} {
		for round := 0; round < 3; round++ {
			resp, body := fetchRaw(t, "GET", p.URL("/app.js"), "Accept-Encoding", enc)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != enc {
				t.Fatalf("%q round %d: %d, Content-Encoding %q", enc, round, resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			if got := decode(t, enc, body); string(got) != js {
				t.Fatalf("%q round %d: decoded %d bytes, not the file", enc, round, len(got))
			}
			if resp.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%q: Vary %q", enc, resp.Header.Get("Vary"))
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
				t.Errorf("%q: Content-Type %q", enc, ct)
			}
			if enc != "" && len(body) > len(js)/2 {
				t.Errorf("%q: %d bytes for a %d-byte file", enc, len(body), len(js))
			}
			etag := resp.Header.Get("ETag")
			if enc == "" {
				plainETag = etag
			} else if !strings.HasSuffix(etag, "-"+enc+`"`) {
				t.Errorf("%q: ETag %q, want the variant's own", enc, etag)
			}
			// The variant's validator answers 304.
			if r2, _ := fetchRaw(t, "GET", p.URL("/app.js"), "Accept-Encoding", enc, "If-None-Match", etag); r2.StatusCode != 304 {
				t.Errorf("%q: If-None-Match its ETag: %d", enc, r2.StatusCode)
			}
		}
	}
	if plainETag == "" {
		t.Error("identity response has no ETag")
	}
	// Range: the identity bytes, never compressed.
	resp, body := fetchRaw(t, "GET", p.URL("/app.js"), "Accept-Encoding", "gzip, br, zstd", "Range", "bytes=100-199")
	if resp.StatusCode != 206 || resp.Header.Get("Content-Encoding") != "" || string(body) != js[100:200] {
		t.Errorf("range: %d, Content-Encoding %q, body %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), body)
	}
	// Tiny and incompressible files are sent as they are.
	for _, path := range []string{"/tiny.js", "/logo.png"} {
		if resp, _ := fetchRaw(t, "GET", p.URL(path), "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s compressed", path)
		}
	}
}

// An event stream through a compressed proxy route delivers each event,
// decoded, within 100 ms of the upstream writing it.
func TestCompressProxySSE(t *testing.T) {
	sent := make(chan time.Time, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for i := 0; i < 5; i++ {
			time.Sleep(200 * time.Millisecond)
			fmt.Fprintf(w, "data: tick %d\n\n", i)
			w.(http.Flusher).Flush()
			sent <- time.Now()
		}
	}))
	defer up.Close()
	dir := t.TempDir()
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  compress = ["gzip", "br"]
  proxy = { upstreams = [%q] }
`, up.URL), 1)
	// stream reads one event stream and returns the longest delay between
	// the upstream's write and the client's decoded read.
	stream := func(enc string) time.Duration {
		req, _ := http.NewRequest("GET", p.URL("/events"), nil)
		req.Header.Set("Accept-Encoding", enc)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := noDecodeClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != enc {
			t.Fatalf("Content-Encoding %q, want %s", resp.Header.Get("Content-Encoding"), enc)
		}
		br := bufio.NewReader(decoder(t, enc, resp.Body))
		var worst time.Duration
		for i := 0; i < 5; i++ {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s event %d: %v", enc, i, err)
			}
			br.ReadString('\n')
			worst = max(worst, time.Since(<-sent))
			if want := fmt.Sprintf("data: tick %d\n", i); line != want {
				t.Errorf("%s: got %q, want %q", enc, line, want)
			}
		}
		return worst
	}
	for _, enc := range []string{"gzip", "br"} {
		// A buffered stream is late on every try (by the upstream's 200 ms
		// pause at least); one retry absorbs a scheduling hiccup of this
		// shared, -race machine.
		worst := stream(enc)
		if worst > 100*time.Millisecond {
			t.Logf("%s: an event took %v; once more", enc, worst)
			worst = stream(enc)
		}
		if worst > 100*time.Millisecond {
			t.Errorf("%s: an event arrived %v after the upstream sent it, want within 100ms", enc, worst)
		}
	}
}

// A cached compressed route stores the gzip and br variants separately,
// once each whatever the client's spelling of Accept-Encoding, and serves
// them without asking the upstream again.
func TestCompressCacheVariants(t *testing.T) {
	page := jsFile(20 << 10)
	var hits atomic.Int64
	var seenAE atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		seenAE.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Content-Type", "application/javascript")
		w.Header().Set("ETag", `"p1"`)
		io.WriteString(w, page)
	}))
	defer up.Close()
	dir := t.TempDir()
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
compress = ["br", "gzip"]
  [[site.route]]
  path = "/"
  proxy = { upstreams = [%q] }
  cache = {}
`, up.URL), 1)
	steps := []struct {
		ae, wantEnc, wantStatus string
		wantHits                int64
	}{
		{"gzip", "gzip", "miss", 1},
		{"gzip", "gzip", "hit", 1},          // the fast path's hit: the raw value is the token
		{"gzip, deflate", "gzip", "hit", 1}, // another spelling, same variant
		{"br", "br", "miss", 2},
		{"gzip, deflate, br", "br", "hit", 2},
		{"br;q=0.5, gzip;q=0.4", "br", "hit", 2},
		{"", "", "miss", 3},
		{"identity", "", "hit", 3},
		{"gzip", "gzip", "hit", 3},
	}
	for i, s := range steps {
		resp, body := fetchRaw(t, "GET", p.URL("/app.js"), "Accept-Encoding", s.ae)
		if got := resp.Header.Get("Content-Encoding"); got != s.wantEnc {
			t.Errorf("step %d (%q): Content-Encoding %q, want %q", i, s.ae, got, s.wantEnc)
		}
		if string(decode(t, s.wantEnc, body)) != page {
			t.Errorf("step %d (%q): body does not decode to the page", i, s.ae)
		}
		if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, s.wantStatus) {
			t.Errorf("step %d (%q): Cache-Status %q, want %s", i, s.ae, cs, s.wantStatus)
		}
		if n := hits.Load(); n != s.wantHits {
			t.Errorf("step %d (%q): upstream asked %d times, want %d", i, s.ae, n, s.wantHits)
		}
		if v := resp.Header.Values("Vary"); len(v) != 1 || v[0] != "Accept-Encoding" {
			t.Errorf("step %d: Vary %q", i, v)
		}
	}
	if ae := seenAE.Load(); ae != "identity" {
		t.Errorf("upstream last saw Accept-Encoding %q, want the normalised \"identity\"", ae)
	}
}

// CGI and WSGI routes compress too.
func TestCompressCGIAndWSGI(t *testing.T) {
	py := pythonPath(t)
	dir := t.TempDir()
	// As root, scripts run as nobody, who must reach them.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	text := strings.Repeat("All work and no play makes Jack a dull boy.\n", 100)
	writeFiles(t, dir, map[string]string{
		"cgi-bin/page.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\ni=0\nwhile [ $i -lt 100 ]; do echo 'All work and no play makes Jack a dull boy.'; i=$((i+1)); done\n",
		"app/app.py": "def application(environ, start_response):\n" +
			"    body = ('All work and no play makes Jack a dull boy.\\n' * 100).encode()\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n" +
			"    return [body]\n",
	})
	chmodX(t, dir+"/cgi-bin")
	chmodX(t, dir+"/cgi-bin/page.sh")
	p := startConfig(t, dir, fmt.Sprintf(`
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
compress = ["gzip"]
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
  [[site.route]]
  path = "/app/"
  wsgi = { app = "app:application", dir = "app", workers = 1, python = %q }
`, py), 1)
	for _, path := range []string{"/cgi-bin/page.sh", "/app/x"} {
		resp, body := fetchRaw(t, "GET", p.URL(path), "Accept-Encoding", "gzip")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %d, Content-Encoding %q", path, resp.StatusCode, resp.Header.Get("Content-Encoding"))
			continue
		}
		if got := string(decode(t, "gzip", body)); got != text {
			t.Errorf("%s: decoded %q", path, got)
		}
	}
}

// `portico serve` compresses (quick mode turns it on).
func TestCompressQuickMode(t *testing.T) {
	dir := t.TempDir()
	js := jsFile(10 << 10)
	writeFiles(t, dir, map[string]string{"app.js": js})
	p := startPortico(t, dir, 1, "serve", "-b", "127.0.0.1", "0")
	resp, body := fetchRaw(t, "GET", p.URL("/app.js"), "Accept-Encoding", "gzip, deflate, br, zstd")
	if resp.Header.Get("Content-Encoding") != "zstd" || string(decode(t, "zstd", body)) != js {
		t.Errorf("quick mode: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

// pythonPath is the real python3 (a pyenv shim is slow to start).
func pythonPath(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 not installed: .ci/run installs it")
	}
	if real, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output(); err == nil {
		return strings.TrimSpace(string(real))
	}
	return py
}

func chmodX(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}
