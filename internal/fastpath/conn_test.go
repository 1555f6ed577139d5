package fastpath

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// memHandler answers paths it knows from memory and hands off the rest.
type memHandler struct {
	files    map[string][]byte
	defaults [][2]string
	served   atomic.Int64
	file     string // path served from disk with SendFile at /file
	block    chan struct{}
	entered  chan struct{}
}

func (h *memHandler) ServeFast(req *Request, w *ResponseWriter) bool {
	if req.Path == "/file" && h.file != "" {
		f, err := os.Open(h.file)
		if err != nil {
			return false
		}
		defer f.Close()
		fi, _ := f.Stat()
		w.SetDefaultHeaders(h.defaults)
		w.WriteHeader(200)
		w.AddHeader("Content-Type", "application/octet-stream")
		addHeaderInt(w, "Content-Length", fi.Size())
		if _, err := w.SendFile(f, fi.Size()); err != nil {
			panic(err)
		}
		h.served.Add(1)
		return true
	}
	if req.Path == "/gone" {
		// A handler that looks whether the client left (a slow
		// upstream's relay does).
		if w.ClientGone() {
			return false
		}
		req.Path = "/a"
	}
	if req.Path == "/panic" {
		panic("boom")
	}
	if req.Path == "/block" && h.block != nil {
		h.entered <- struct{}{}
		<-h.block
		req.Path = "/a"
	}
	body, ok := h.files[req.Path]
	if !ok {
		return false
	}
	w.SetDefaultHeaders(h.defaults)
	w.WriteHeader(200)
	w.AddHeader("Content-Type", "text/plain; charset=utf-8")
	addHeaderInt(w, "Content-Length", int64(len(body)))
	if req.Method != "HEAD" {
		w.Write(body)
	}
	h.served.Add(1)
	return true
}

type testServer struct {
	addr string
	fl   *Listener
	fast *memHandler
	srv  *http.Server
	slow atomic.Int64 // requests net/http served
}

// newTestServer runs the fast path in front of a real http.Server whose
// handler echoes the method, path and body, marked "X-Served-By: net/http".
func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	// Accepted as portico accepts plain HTTP (rawsock.Listener, on Linux).
	ln := listenAsServer(t)
	ts := &testServer{addr: ln.Addr().String(), fast: &memHandler{files: map[string][]byte{
		"/a":   []byte("hello a"),
		"/1k":  []byte(strings.Repeat("x", 1024)),
		"/big": []byte(strings.Repeat("y", 100<<10)),
	}}}
	ts.fl = Listen(ln, ts.fast, opts)
	ts.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ts.slow.Add(1)
			if r.URL.Path == "/slowfile" && ts.fast.file != "" {
				// sendfile through the handed-off connection
				w.Header().Set("X-Served-By", "net/http")
				http.ServeFile(w, r, ts.fast.file)
				return
			}
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Served-By", "net/http")
			fmt.Fprintf(w, "%s %s %q", r.Method, r.RequestURI, b)
		}),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
	}
	go ts.srv.Serve(ts.fl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ts.srv.Shutdown(ctx)
		ts.fl.Shutdown(ctx)
	})
	return ts
}

func (ts *testServer) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

type resp struct {
	status int
	header http.Header
	body   string
	close  bool
}

func readResp(t *testing.T, br *bufio.Reader, method string) resp {
	t.Helper()
	r, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp{r.StatusCode, r.Header, string(b), r.Close}
}

func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		t.Fatalf("got byte %q, want EOF", b)
	} else if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("got %v, want EOF", err)
	}
}

func isReset(err error) bool { return strings.Contains(err.Error(), "connection reset") }

func TestKeepAliveAndHeaders(t *testing.T) {
	ts := newTestServer(t, Options{})
	c, br := ts.dial(t)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		r := readResp(t, br, "GET")
		if r.status != 200 || r.body != "hello a" || r.close {
			t.Fatalf("got %d %q close=%v, want 200 %q", r.status, r.body, r.close, "hello a")
		}
		if got := r.header.Get("Date"); len(got) != 29 || !strings.HasSuffix(got, " GMT") {
			t.Errorf("got Date %q", got)
		}
		if got := r.header.Get("Content-Length"); got != "7" {
			t.Errorf("got Content-Length %q, want %q", got, "7")
		}
	}
	if ts.slow.Load() != 0 || ts.fast.served.Load() != 3 {
		t.Errorf("got fast %d slow %d, want 3 0", ts.fast.served.Load(), ts.slow.Load())
	}
}

func TestExactResponseBytes(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.fast.defaults = [][2]string{{"Content-Type", "nope"}, {"X-Site", "s"}}
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	all, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	got := string(all)
	i := strings.Index(got, "Date: ")
	if i < 0 {
		t.Fatalf("no Date in %q", got)
	}
	got = got[:i+6] + "D" + got[i+6+29:]
	want := "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 7\r\n" +
		"X-Site: s\r\nConnection: close\r\n\r\nhello a"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPipelining(t *testing.T) {
	ts := newTestServer(t, Options{})
	c, br := ts.dial(t)
	// Three fast requests, then one net/http must answer, in one write.
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /1k HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /1k HTTP/1.1\r\nHost: x\r\n\r\nGET /other?q HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []struct {
		method, body string
		n            int
	}{{"GET", "hello a", 7}, {"HEAD", "", 1024}, {"GET", strings.Repeat("x", 1024), 1024}, {"GET", `GET /other?q ""`, -1}} {
		r := readResp(t, br, want.method)
		if r.status != 200 || r.body != want.body {
			t.Errorf("response %d: got %d %q, want 200 %q", i, r.status, r.body, want.body)
		}
		if want.n >= 0 && r.header.Get("Content-Length") != fmt.Sprint(want.n) {
			t.Errorf("response %d: got Content-Length %q, want %d", i, r.header.Get("Content-Length"), want.n)
		}
	}
	if ts.fast.served.Load() != 3 || ts.slow.Load() != 1 {
		t.Errorf("got fast %d slow %d, want 3 1", ts.fast.served.Load(), ts.slow.Load())
	}
}

func TestHTTP10(t *testing.T) {
	ts := newTestServer(t, Options{})
	// Without keep-alive: answered with HTTP/1.0, then closed.
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.0\r\n\r\n")
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.0 200 OK\r\n" {
		t.Errorf("got %q, want %q", line, "HTTP/1.0 200 OK\r\n")
	}
	rest, _ := io.ReadAll(br)
	if strings.Contains(string(rest), "Connection:") || !strings.HasSuffix(string(rest), "hello a") {
		t.Errorf("got %q", rest)
	}
	// With keep-alive: "Connection: keep-alive" and the connection stays.
	c, br = ts.dial(t)
	for i := 0; i < 2; i++ {
		fmt.Fprintf(c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		r := readResp(t, br, "GET")
		if r.body != "hello a" || r.header.Get("Connection") != "keep-alive" {
			t.Errorf("got %q Connection %q", r.body, r.header.Get("Connection"))
		}
	}
}

func TestConnectionClose(t *testing.T) {
	ts := newTestServer(t, Options{})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	r := readResp(t, br, "GET")
	if !r.close || r.body != "hello a" {
		t.Errorf("got close=%v %q", r.close, r.body)
	}
	expectEOF(t, br)
}

func TestHead(t *testing.T) {
	ts := newTestServer(t, Options{})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	r := readResp(t, br, "HEAD")
	if r.status != 200 || r.body != "" || r.header.Get("Content-Length") != fmt.Sprint(100<<10) {
		t.Errorf("got %d %q %q", r.status, r.body, r.header.Get("Content-Length"))
	}
	if r = readResp(t, br, "GET"); r.body != "hello a" {
		t.Errorf("got %q, want %q", r.body, "hello a")
	}
}

func TestLargeBody(t *testing.T) {
	ts := newTestServer(t, Options{})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.body != strings.Repeat("y", 100<<10) {
		t.Errorf("got %d bytes", len(r.body))
	}
	if r := readResp(t, br, "GET"); r.body != "hello a" {
		t.Errorf("got %q, want %q", r.body, "hello a")
	}
}

func TestSendFile(t *testing.T) {
	ts := newTestServer(t, Options{})
	name := filepath.Join(t.TempDir(), "f")
	data := strings.Repeat("0123456789", 50000)
	os.WriteFile(name, []byte(data), 0o644)
	ts.fast.file = name
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /slowfile HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"hello a", data, "hello a", data} {
		if r := readResp(t, br, "GET"); r.body != want {
			t.Errorf("got %d bytes, want %d", len(r.body), len(want))
		}
	}
}

// A file of several slices: its header goes out with MSG_MORE, corked
// with the file's start, and the slices with a yield between them. The
// client gets the header (nothing leaves it corked), every byte in
// order, and the next pipelined answer after it.
func TestSendFileOfSeveralSlices(t *testing.T) {
	ts := newTestServer(t, Options{})
	name := filepath.Join(t.TempDir(), "f")
	var b strings.Builder
	for i := 0; b.Len() < 2*sendfileSlice+12345; i++ {
		fmt.Fprintf(&b, "%08d\n", i)
	}
	data := b.String()
	os.WriteFile(name, []byte(data), 0o644)
	ts.fast.file = name
	c, br := ts.dial(t)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.body != data {
		t.Errorf("got %d bytes, want %d (first difference at %d)", len(r.body), len(data), firstDiff(r.body, data))
	}
	if r := readResp(t, br, "GET"); r.body != "hello a" {
		t.Errorf("after the file: got %q", r.body)
	}
	// A lone file request: the answer must not wait for a next one.
	fmt.Fprintf(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.body != data {
		t.Errorf("second time: got %d bytes, want %d", len(r.body), len(data))
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A fast GET, then a POST with a body on the same connection: the POST
// reaches net/http intact, and net/http keeps serving the connection.
func TestHandOffMidConnection(t *testing.T) {
	ts := newTestServer(t, Options{})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.body != "hello a" {
		t.Fatalf("got %q", r.body)
	}
	// Headers and the start of the body in one write, the rest later.
	fmt.Fprintf(c, "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello")
	time.Sleep(20 * time.Millisecond)
	fmt.Fprintf(c, " world")
	r := readResp(t, br, "POST")
	if want := `POST /form "hello world"`; r.body != want || r.header.Get("X-Served-By") != "net/http" {
		t.Errorf("got %q, want %q", r.body, want)
	}
	// The rest of the connection's life is net/http's.
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.body != `GET /a ""` {
		t.Errorf("got %q, want %q", r.body, `GET /a ""`)
	}
	if ts.fast.served.Load() != 1 || ts.slow.Load() != 2 {
		t.Errorf("got fast %d slow %d, want 1 2", ts.fast.served.Load(), ts.slow.Load())
	}
}

// Requests the fast handler declines, or the parser refuses, reach
// net/http byte for byte, with whatever net/http makes of them.
func TestHandOffCases(t *testing.T) {
	tests := []struct {
		req    string
		status int
		body   string
	}{
		{"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n", 200, `GET /missing ""`},
		{"GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", 200, `GET /a ""`},
		{"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, `GET /a "abc"`},
		{"GET /a HTTP/1.1\r\n\r\n", 400, ""},
		{"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, ""},
		{"GET /a HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400, ""},
		{"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n", 200, `DELETE /a ""`},
	}
	for _, tt := range tests {
		ts := newTestServer(t, Options{})
		c, br := ts.dial(t)
		fmt.Fprint(c, tt.req)
		r := readResp(t, br, "GET")
		if r.status != tt.status || tt.body != "" && r.body != tt.body {
			t.Errorf("%q: got %d %q, want %d %q", tt.req, r.status, r.body, tt.status, tt.body)
		}
		if ts.fast.served.Load() != 0 {
			t.Errorf("%q: served by the fast path", tt.req)
		}
	}
}

// A header block larger than the fast path's buffer goes to net/http.
func TestHandOffLargeHeaders(t *testing.T) {
	ts := newTestServer(t, Options{BufferSize: 1024})
	c, br := ts.dial(t)
	big := strings.Repeat("z", 3000)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n", big)
	r := readResp(t, br, "GET")
	if r.body != `GET /a ""` {
		t.Errorf("got %q, want %q", r.body, `GET /a ""`)
	}
}

// MaxHeaderBytes below the buffer size: a bigger request is handed off.
func TestMaxHeaderBytes(t *testing.T) {
	ts := newTestServer(t, Options{MaxHeaderBytes: 100})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.body != "hello a" {
		t.Errorf("got %q, want %q", r.body, "hello a")
	}
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", strings.Repeat("p", 100))
	if r := readResp(t, br, "GET"); r.body != `GET /a ""` {
		t.Errorf("got %q, want %q", r.body, `GET /a ""`)
	}
}

// A client that trickles its header block is cut after ReadHeaderTimeout.
func TestReadHeaderTimeout(t *testing.T) {
	ts := newTestServer(t, Options{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 5 * time.Second})
	c, br := ts.dial(t)
	start := time.Now()
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\n")
	var werr error
	for i := 0; i < 20 && werr == nil; i++ {
		time.Sleep(50 * time.Millisecond)
		_, werr = fmt.Fprintf(c, "X-%d: y\r\n", i)
	}
	expectEOF(t, br)
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("cut after %v, want about 200ms", d)
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, Options{ReadHeaderTimeout: time.Second, IdleTimeout: 150 * time.Millisecond})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	readResp(t, br, "GET")
	start := time.Now()
	expectEOF(t, br)
	if d := time.Since(start); d < 100*time.Millisecond || d > 800*time.Millisecond {
		t.Errorf("closed after %v, want about 150ms", d)
	}
}

// Close ends idle fast-path connections; Shutdown waits for them.
func TestCleanClose(t *testing.T) {
	ts := newTestServer(t, Options{IdleTimeout: time.Minute})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	readResp(t, br, "GET")
	if n := connCount(ts.fl); n != 1 {
		t.Fatalf("got %d fast connections, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.fl.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Shutdown took %v", d)
	}
	expectEOF(t, br)
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Errorf("still accepting after Close")
	}
	if _, err := ts.fl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: got %v, want net.ErrClosed", err)
	}
}

// http.Server.Shutdown reaches the fast path: Serve stops, and closing the
// fast listener closes the idle fast connection.
func TestHTTPServerShutdown(t *testing.T) {
	ts := newTestServer(t, Options{IdleTimeout: time.Minute})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	readResp(t, br, "GET")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, br)
}

func TestPanicClosesConnection(t *testing.T) {
	var got atomic.Value
	ts := newTestServer(t, Options{OnPanic: func(v any) { got.Store(v) }})
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	expectEOF(t, br)
	if got.Load() != "boom" {
		t.Errorf("got panic %v, want boom", got.Load())
	}
	c, br = ts.dial(t)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readResp(t, br, "GET"); r.body != "hello a" {
		t.Errorf("got %q, want %q", r.body, "hello a")
	}
}

func TestDefaultHeaders(t *testing.T) {
	tests := []struct {
		lines    string
		defaults [][2]string
		want     string
	}{
		{"A: 1\r\n", [][2]string{{"B", "2"}}, "A: 1\r\nB: 2\r\n"},
		{"Vary: Accept-Encoding\r\n", [][2]string{{"Vary", "Origin"}}, "Vary: Accept-Encoding\r\n"},
		{"vary: x\r\n", [][2]string{{"Vary", "Origin"}, {"X", "y"}}, "vary: x\r\nX: y\r\n"},
		{"Varyx: 1\r\n", [][2]string{{"Vary", "Origin"}}, "Varyx: 1\r\nVary: Origin\r\n"},
	}
	for _, tt := range tests {
		c := &conn{l: &Listener{}}
		w := &ResponseWriter{c: c, keepAlive: true}
		w.headerStart = 0
		w.started = true
		w.AddHeaderLines([]byte(tt.lines))
		w.SetDefaultHeaders(tt.defaults)
		w.endHeader()
		if got := string(c.out); got != tt.want+"\r\n" {
			t.Errorf("got %q, want %q", got, tt.want+"\r\n")
		}
	}
}

// A client that stops reading is cut after WriteTimeout.
func TestWriteTimeout(t *testing.T) {
	ts := newTestServer(t, Options{WriteTimeout: 200 * time.Millisecond})
	c, _ := ts.dial(t)
	c.(*net.TCPConn).SetReadBuffer(4096)
	go func() {
		for i := 0; i < 2000; i++ {
			if _, err := fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	time.Sleep(100 * time.Millisecond)
	for connCount(ts.fl) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("connection of a client that does not read is still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A request in flight when the listener closes is answered with
// "Connection: close", then the connection is closed.
func TestCloseWhileBusy(t *testing.T) {
	ts := newTestServer(t, Options{IdleTimeout: time.Minute})
	ts.fast.block, ts.fast.entered = make(chan struct{}), make(chan struct{}, 1)
	c, br := ts.dial(t)
	fmt.Fprintf(c, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	<-ts.fast.entered
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done <- ts.fl.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	close(ts.fast.block)
	r := readResp(t, br, "GET")
	if r.body != "hello a" || !r.close {
		t.Errorf("got %q close=%v, want %q close=true", r.body, r.close, "hello a")
	}
	expectEOF(t, br)
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// As net/http: a new connection that sends nothing is cut after
// ReadHeaderTimeout, not IdleTimeout.
func TestFirstRequestHeaderTimeout(t *testing.T) {
	ts := newTestServer(t, Options{ReadHeaderTimeout: 150 * time.Millisecond, IdleTimeout: time.Minute})
	_, br := ts.dial(t)
	start := time.Now()
	expectEOF(t, br)
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("silent connection cut after %v, want about 150ms", d)
	}
}

// The answer to a request goes out even when the next pipelined request
// is still incomplete.
func TestPipelinedPartialNext(t *testing.T) {
	ts := newTestServer(t, Options{ReadHeaderTimeout: 5 * time.Second})
	c, br := ts.dial(t)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /1k HTTP/1.1\r\nHo")
	if r := readResp(t, br, "GET"); r.body != "hello a" {
		t.Fatalf("got %q, want %q", r.body, "hello a")
	}
	fmt.Fprintf(c, "st: x\r\n\r\n")
	if r := readResp(t, br, "GET"); len(r.body) != 1024 {
		t.Errorf("got %d bytes, want 1024", len(r.body))
	}
}

// addHeaderInt adds one header line with a decimal value.
func addHeaderInt(w *ResponseWriter, name string, v int64) {
	// A field line built on the stack: the benchmarks' handler allocates
	// nothing per request, as the real handlers (precomputed lines).
	var buf [64]byte
	b := append(buf[:0], name...)
	b = append(b, ": "...)
	b = strconv.AppendInt(b, v, 10)
	w.AddHeaderLines(append(b, "\r\n"...))
}

// connCount returns the number of connections the fast path serves now.
func connCount(l *Listener) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
