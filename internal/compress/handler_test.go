package compress

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"portico/internal/config"
)

// jsSource returns n bytes of JavaScript-like text that compresses as real
// code does (repetitive, not trivially).
func jsSource(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"function", "return", "const", "let", "var", "this", "if", "else", "=>", "{", "}", "(", ")", ";", "\n", "document", "window", "value", "index", "length"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
		if rng.IntN(7) == 0 {
			b.WriteString(strconv.Itoa(rng.IntN(100000)))
		}
	}
	return b.Bytes()[:n]
}

// Decode returns body decoded from encoding (a test helper others use too).
func Decode(t testing.TB, encoding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch encoding {
	case "", "identity":
		return body
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unknown encoding %q", encoding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", encoding, err)
	}
	return out
}

func testSettings(t testing.TB, enc ...string) *Settings {
	t.Helper()
	s, err := NewSettings(config.Compression{Encodings: enc, MinSize: 1024, Types: config.DefaultCompressTypes(), Level: 5})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawClient never adds or decodes Accept-Encoding itself.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}

func fetch(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestHandlerEncodingsRoundTrip(t *testing.T) {
	js := jsSource(100 << 10)
	h := New(testSettings(t, "zstd", "br", "gzip"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(js)))
		w.Header().Set("Accept-Ranges", "bytes")
		w.Write(js)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct{ ae, want string }{
		{"gzip", "gzip"}, {"br", "br"}, {"zstd", "zstd"},
		{"gzip, deflate, br, zstd", "zstd"}, {"gzip;q=1, br;q=0.5", "gzip"}, {"", ""},
	} {
		resp, body := fetch(t, srv.URL, "Accept-Encoding", c.ae)
		if got := resp.Header.Get("Content-Encoding"); got != c.want {
			t.Errorf("AE %q: Content-Encoding %q, want %q", c.ae, got, c.want)
			continue
		}
		if got := resp.Header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("AE %q: Vary %q", c.ae, got)
		}
		if dec := Decode(t, c.want, body); !bytes.Equal(dec, js) {
			t.Errorf("AE %q: decoded %d bytes, not the file (%d)", c.ae, len(dec), len(js))
		}
		if c.want == "" {
			if resp.Header.Get("ETag") != `"v1"` || resp.ContentLength != int64(len(js)) {
				t.Errorf("identity: ETag %q, length %d", resp.Header.Get("ETag"), resp.ContentLength)
			}
			continue
		}
		if got := resp.Header.Get("ETag"); got != `W/"v1"` {
			t.Errorf("AE %q: ETag %q, want weak", c.ae, got)
		}
		if resp.Header.Get("Accept-Ranges") != "" || resp.Header.Get("Content-Length") != "" {
			t.Errorf("AE %q: kept Accept-Ranges or Content-Length: %v", c.ae, resp.Header)
		}
		if len(body) >= len(js)/2 {
			t.Errorf("AE %q: %d bytes compressed to %d", c.ae, len(js), len(body))
		}
	}
}

func TestHandlerLeavesAlone(t *testing.T) {
	big := strings.Repeat("hello, world ", 400)
	cases := []struct {
		name   string
		header []string // request fields
		serve  func(w http.ResponseWriter)
	}{
		{"range request", []string{"Range", "bytes=0-9"}, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(big))
		}},
		{"206", nil, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Range", "bytes 0-4999/9999")
			w.WriteHeader(http.StatusPartialContent)
			w.Write([]byte(big[:5000]))
		}},
		{"304", nil, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNotModified)
		}},
		{"no-transform", nil, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Cache-Control", "public, No-Transform")
			w.Write([]byte(big))
		}},
		{"already encoded", nil, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "deflate")
			w.Write([]byte(big))
		}},
		{"tiny with length", nil, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		}},
		{"tiny without length", nil, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("hello"))
		}},
		{"image", nil, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte(big))
		}},
		{"no content type", nil, func(w http.ResponseWriter) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte(big))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(New(testSettings(t, "gzip"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serve(w) })))
			defer srv.Close()
			resp, _ := fetch(t, srv.URL, append([]string{"Accept-Encoding", "gzip"}, c.header...)...)
			if ce := resp.Header.Get("Content-Encoding"); ce == "gzip" {
				t.Errorf("compressed (Content-Encoding %q)", ce)
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Vary %q: want Accept-Encoding on every response", resp.Header.Get("Vary"))
			}
		})
	}
}

func TestHandlerHoldsBackUntilMinSize(t *testing.T) {
	srv := httptest.NewServer(New(testSettings(t, "gzip"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i < 200; i++ {
			fmt.Fprintf(w, `{"i":%d},`, i) // many small writes, no length
		}
	})))
	defer srv.Close()
	resp, body := fetch(t, srv.URL, "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("not compressed: %v", resp.Header)
	}
	if dec := string(Decode(t, "gzip", body)); !strings.HasPrefix(dec, `{"i":0},{"i":1},`) || !strings.HasSuffix(dec, `{"i":199},`) {
		t.Errorf("decoded %q...", dec[:40])
	}
}

func TestHandlerHEAD(t *testing.T) {
	srv := httptest.NewServer(New(testSettings(t, "br"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", "5000")
		if r.Method != http.MethodHead {
			w.Write(bytes.Repeat([]byte("a"), 5000))
		}
	})))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodHead, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "br")
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "br" || resp.Header.Get("Content-Length") != "" {
		t.Errorf("HEAD header %v: want the GET's (br, no length)", resp.Header)
	}
}

// An event stream flushes through the encoder: each event reaches the
// client, decoded, within 100 ms of being written.
func TestHandlerStreamsEvents(t *testing.T) {
	for _, enc := range []string{"gzip", "br", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			sent := make(chan time.Time, 5)
			srv := httptest.NewServer(New(testSettings(t, enc), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				for i := 0; i < 5; i++ {
					time.Sleep(150 * time.Millisecond)
					fmt.Fprintf(w, "data: event %d\n\n", i)
					sent <- time.Now()
					w.(http.Flusher).Flush()
				}
			})))
			defer srv.Close()
			once := func() time.Duration {
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				req.Header.Set("Accept-Encoding", enc)
				resp, err := rawClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.Header.Get("Content-Encoding") != enc {
					t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
				}
				br := bufio.NewReader(streamDecoder(t, enc, resp.Body))
				var worst time.Duration
				for i := 0; i < 5; i++ {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("event %d: %v", i, err)
					}
					br.ReadString('\n')
					worst = max(worst, time.Since(<-sent))
					if want := fmt.Sprintf("data: event %d\n", i); line != want {
						t.Errorf("got %q, want %q", line, want)
					}
				}
				return worst
			}
			// A held-back stream is late every time (by the 150 ms pause at
			// least); one retry absorbs a scheduling hiccup under -race.
			worst := once()
			if worst > 100*time.Millisecond {
				t.Logf("an event took %v; once more", worst)
				worst = once()
			}
			if worst > 100*time.Millisecond {
				t.Errorf("an event arrived %v after it was written, want within 100ms", worst)
			}
		})
	}
}

func streamDecoder(t *testing.T, enc string, r io.Reader) io.Reader {
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	}
	zr, err := zstd.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zr.Close)
	return zr
}

func TestHandlerKeepsInterfaces(t *testing.T) {
	var cw http.ResponseWriter = &responseWriter{}
	if _, ok := cw.(http.Flusher); !ok {
		t.Error("no http.Flusher")
	}
	if _, ok := cw.(http.Hijacker); !ok {
		t.Error("no http.Hijacker")
	}
	if _, ok := cw.(io.ReaderFrom); !ok {
		t.Error("no io.ReaderFrom")
	}
}

func TestCodecCompressPooled(t *testing.T) {
	c := NewCodec(1)
	js := jsSource(20000)
	for _, enc := range []Encoding{Gzip, Brotli, Zstd} {
		for i := 0; i < 3; i++ { // pooled encoders are reset between uses
			z, err := c.Compress(enc, js)
			if err != nil {
				t.Fatal(err)
			}
			if dec := Decode(t, enc.Token(), z); !bytes.Equal(dec, js) {
				t.Fatalf("%s round %d: not the input", enc.Token(), i)
			}
		}
	}
}

// A handler that takes over the connection (a WebSocket upgrade through a
// proxy) still can through the compressing writer.
func TestHandlerHijack(t *testing.T) {
	srv := httptest.NewServer(New(testSettings(t, "gzip"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nraw bytes")
		brw.Flush()
	})))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 101") || !strings.HasSuffix(string(got), "\r\n\r\nraw bytes") {
		t.Errorf("got %q", got)
	}
}

func TestReplaceField(t *testing.T) {
	raw := []byte("Host: x\r\naccept-encoding: gzip, br\r\nAccept: */*\r\n")
	got := string(replaceField(nil, raw, "Accept-Encoding", "br"))
	if want := "Host: x\r\nAccept: */*\r\nAccept-Encoding: br\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string(replaceField(nil, []byte("Host: x\r\n"), "Accept-Encoding", "identity")); got != "Host: x\r\nAccept-Encoding: identity\r\n" {
		t.Errorf("absent field: got %q", got)
	}
}

// A handler that panics before writing leaves the status to the server
// (its 500), not an empty 200 sent on the way out.
func TestHandlerPanicWritesNothing(t *testing.T) {
	h := New(testSettings(t, "gzip"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	func() {
		defer func() { recover() }()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		h.ServeHTTP(rec, r)
	}()
	if rec.Flushed || rec.Body.Len() != 0 || rec.Result().Header.Get("Vary") != "" {
		t.Errorf("wrote after the panic: %d %v", rec.Code, rec.Result().Header)
	}
}
