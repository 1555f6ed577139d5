package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// ---- 1. Basic requests and responses ----

// A handler's small response gets its framing from the engine: a
// Content-Length counted from the buffered body, a sniffed Content-Type
// and a Date; the handler's own status and headers pass through.
func TestBasicResponses(t *testing.T) {
	html := "<html><body>hello</body></html>"
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		ctype   string // "" means absent
		clen    string // "" means absent
		body    string
	}{
		{"sniffed html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "yes")
			io.WriteString(w, html)
		}, 200, "text/html; charset=utf-8", strconv.Itoa(len(html)), html},
		{"own content-type and status", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "yes")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, `{"a":1}`)
		}, 418, "application/json", "7", `{"a":1}`},
		{"empty body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "yes")
		}, 200, "", "0", ""},
		// 4 KiB is the most the engine buffers to count.
		{"4 KiB in two writes", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "yes")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Repeat("a", 2048))
			io.WriteString(w, strings.Repeat("b", 2048))
		}, 200, "text/plain", "4096", strings.Repeat("a", 2048) + strings.Repeat("b", 2048)},
		// Beyond it the body streams and its length is not known.
		{"over 4 KiB", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "yes")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Repeat("c", 5000))
		}, 200, "text/plain", "", strings.Repeat("c", 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{}, tt.handler)
			cl := ts.connect(t)
			before := time.Now().Add(-2 * time.Second)
			cl.get(1, "/")
			r := cl.response(1)
			if r.rst || !r.ended {
				t.Fatalf("stream reset (%v) or not ended", r.rstCode)
			}
			if r.status != tt.status {
				t.Errorf("status %d, want %d", r.status, tt.status)
			}
			if got := r.header.Get("x-test"); got != "yes" {
				t.Errorf("x-test %q, want yes", got)
			}
			if got := r.header.Values("content-type"); tt.ctype == "" && len(got) > 0 || tt.ctype != "" && (len(got) != 1 || got[0] != tt.ctype) {
				t.Errorf("content-type %q, want %q", got, tt.ctype)
			}
			if got := r.header.Values("content-length"); tt.clen == "" && len(got) > 0 || tt.clen != "" && (len(got) != 1 || got[0] != tt.clen) {
				t.Errorf("content-length %q, want %q", got, tt.clen)
			}
			date, err := http.ParseTime(r.header.Get("date"))
			if err != nil || date.Before(before) || date.After(time.Now().Add(2*time.Second)) {
				t.Errorf("date %q (%v), want now", r.header.Get("date"), err)
			}
			if string(r.body) != tt.body {
				t.Errorf("body %d bytes %.20q, want %d bytes %.20q", len(r.body), r.body, len(tt.body), tt.body)
			}
			if r.headerBlocks != 1 {
				t.Errorf("%d header blocks, want 1", r.headerBlocks)
			}
		})
	}
}

// The request a handler sees is built from the pseudo-header fields,
// and cookies split across fields are joined (RFC 9113 8.2.3).
func TestRequestFields(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s|%s|%s|%d|%s", r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Proto, r.ProtoMajor, r.Header.Get("Cookie"))
		if r.RemoteAddr == "" {
			io.WriteString(w, "|no remote address")
		}
	}))
	cl := ts.connect(t)
	cl.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "example.test", ":path", "/a/b?x=1",
		"cookie", "a=1", "cookie", "b=2")
	r := cl.response(1)
	if want := "GET|example.test|/a/b|x=1|HTTP/2.0|2|a=1; b=2"; string(r.body) != want {
		t.Fatalf("handler saw %q, want %q", r.body, want)
	}
}

// A real client (x/net's Transport) talks to the engine: GETs and a
// POST over one connection.
func TestTransportRoundTrips(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(b))
	}))
	hc := transportClient(t, ts)
	for i, tc := range []struct{ method, path, body, want string }{
		{"GET", "/one", "", "GET /one 0"},
		{"POST", "/two", strings.Repeat("z", 100000), "POST /two 100000"},
		{"GET", "/three", "", "GET /three 0"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+ts.addr+tc.path, strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = nil
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 || string(b) != tc.want {
			t.Fatalf("request %d: %v %d %s %q, want HTTP/2 200 %q", i, err, resp.StatusCode, resp.Proto, b, tc.want)
		}
	}
}

// transportClient is an HTTP/2 client with prior knowledge over plain
// TCP to ts.
func transportClient(t *testing.T, ts *testServer) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ts.addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testTimeout}
}

// ---- 2. Batching ----

// Ten requests that arrive in one read are answered in at most two
// socket writes: the responses that finish meanwhile share a flush,
// where a write per response would make ten.
//
// The engine does not wait for its handlers (its flusher yields once),
// so on a loaded machine a batch sometimes takes three or more writes
// (under -race on two CPUs about one batch in seven, more with
// GOMAXPROCS above the CPU count). The test therefore runs ten batches
// and asks it of most of them, and a mean far below ten.
func TestBatchedResponsesShareWrites(t *testing.T) {
	const rounds = 10
	cc := make(chan *countingConn, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "small body "+r.URL.Path)
	}), wrapConn(func(nc net.Conn) net.Conn {
		c := &countingConn{Conn: nc}
		cc <- c
		return c
	}))
	cl := ts.connect(t)
	conn := waitFor(t, cc, "the server's connection")
	var writes []int
	id := uint32(1)
	for round := 0; round < rounds; round++ {
		// The server has answered everything before: it has nothing
		// more to write until the requests come.
		before := conn.writes.Load()
		first := id
		cl.batch(func() {
			for i := 0; i < 10; i++ {
				cl.get(id, "/"+strconv.Itoa(int(id)))
				id += 2
			}
		})
		for sid := first; sid < id; sid += 2 {
			r := cl.response(sid)
			if r.status != 200 || string(r.body) != "small body /"+strconv.Itoa(int(sid)) {
				t.Fatalf("stream %d: %d %q", sid, r.status, r.body)
			}
		}
		writes = append(writes, int(conn.writes.Load()-before))
	}
	good, total := 0, 0
	for _, n := range writes {
		total += n
		if n <= 2 {
			good++
		}
	}
	if good < rounds/2 || total > 3*rounds {
		t.Fatalf("socket writes per batch of 10 responses: %v; want at most 2 in most batches", writes)
	}
}

// ---- 3. Flow control ----

// With the client's stream window at 0, the headers go out but no DATA
// until a WINDOW_UPDATE, and then no more than it allows.
func TestFlowControlStreamWindow(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1024)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	cl := ts.connect(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	cl.get(1, "/")
	r := cl.stream(1)
	for r.status == 0 {
		cl.next()
	}
	noData := func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return !ok }
	cl.silent(noData)
	if len(r.body) != 0 {
		t.Fatalf("%d bytes came through a zero window", len(r.body))
	}
	cl.windowUpdate(1, 100)
	for len(r.body) < 100 {
		cl.next()
	}
	cl.silent(noData)
	if len(r.body) != 100 {
		t.Fatalf("%d bytes came through a 100-byte window", len(r.body))
	}
	cl.windowUpdate(1, 5000)
	cl.response(1)
	if !bytes.Equal(r.body, body) || !r.ended {
		t.Fatalf("got %d bytes (ended %v), want the 1 KiB body", len(r.body), r.ended)
	}
}

// A stream window that is open does not help when the connection's
// window (65535 until the client raises it) is spent.
func TestFlowControlConnectionWindow(t *testing.T) {
	body := bytes.Repeat([]byte("y"), 100000)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	cl := ts.connect(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	cl.get(1, "/")
	r := cl.stream(1)
	for len(r.body) < 65535 {
		cl.next()
	}
	cl.silent(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return !ok })
	if len(r.body) != 65535 {
		t.Fatalf("%d bytes came through a 65535-byte connection window", len(r.body))
	}
	cl.windowUpdate(0, 100000)
	cl.response(1)
	if !bytes.Equal(r.body, body) {
		t.Fatalf("got %d bytes, want %d", len(r.body), len(body))
	}
}

// A body far larger than the default windows arrives whole when the
// client gives back what it reads.
func TestFlowControlLargeBody(t *testing.T) {
	body := make([]byte, 200<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for p := body; len(p) > 0; {
			n := min(len(p), 8<<10)
			if _, err := w.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	}))
	cl := ts.connect(t)
	cl.autoWindow = true
	cl.get(1, "/")
	r := cl.response(1)
	if r.rst || !bytes.Equal(r.body, body) {
		t.Fatalf("got %d bytes (reset %v), want %d", len(r.body), r.rst, len(body))
	}
}

// ---- 4. Request bodies ----

// A body in several DATA frames (one padded) and its trailers reach the
// handler: the declared trailer is in req.Trailer from the start and has
// its value after EOF.
func TestRequestBodyAndTrailers(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, declared := r.Trailer["X-Checksum"]
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "len=%d err=%v declared=%v cl=%d checksum=%s", n, err, declared, r.ContentLength, r.Trailer.Get("X-Checksum"))
	}))
	cl := ts.connect(t)
	cl.batch(func() {
		cl.request(1, "POST", "/upload", false, "trailer", "x-checksum")
		cl.data(1, false, bytes.Repeat([]byte("a"), 10000))
		cl.fr.WriteDataPadded(1, false, bytes.Repeat([]byte("b"), 5000), make([]byte, 100))
		cl.data(1, false, []byte("tail"))
	})
	// The trailers come later, as a streaming client's would.
	time.Sleep(20 * time.Millisecond)
	cl.headers(1, true, "x-checksum", "abc123")
	r := cl.response(1)
	if want := "len=15004 err=<nil> declared=true cl=-1 checksum=abc123"; string(r.body) != want {
		t.Fatalf("handler said %q, want %q", r.body, want)
	}
}

// A request body beyond the stream window the server announced is a
// flow-control error; up to the window it is accepted even when the
// handler reads none of it.
func TestRequestBodyOverStreamWindow(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never reads: the window is not given back
	}))
	cl := ts.connect(t)
	window := cl.serverSettings[http2.SettingInitialWindowSize]
	if window == 0 || window > 1<<20 {
		t.Fatalf("server announced stream window %d", window)
	}
	cl.request(1, "POST", "/", false)
	chunk := make([]byte, 16384)
	cl.batch(func() {
		for sent := uint32(0); sent < window; sent += uint32(len(chunk)) {
			cl.data(1, false, chunk[:min(uint32(len(chunk)), window-sent)])
		}
		cl.ping([8]byte{'f', 'u', 'l', 'l'})
	})
	for len(cl.pings) == 0 {
		cl.next()
	}
	if r := cl.stream(1); r.rst || cl.goAway != nil {
		t.Fatalf("a body of exactly the window was refused: reset %v, GOAWAY %v", r.rstCode, cl.goAway)
	}
	cl.data(1, false, []byte{1})
	for cl.goAway == nil && !cl.stream(1).rst {
		cl.next()
	}
	if r := cl.stream(1); r.rst && r.rstCode == http2.ErrCodeFlowControl {
		return
	}
	if cl.goAway != nil && cl.goAway.ErrCode == http2.ErrCodeFlowControl {
		return
	}
	t.Fatalf("one byte over the window: RST_STREAM %v, GOAWAY %v; want FLOW_CONTROL_ERROR", cl.stream(1).rstCode, cl.goAway)
}

// Expect: 100-continue is answered 100 when the handler first reads.
func TestExpectContinue(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false, "expect", "100-continue", "content-length", "4")
	r := cl.stream(1)
	for len(r.informational) == 0 {
		cl.next()
	}
	if r.informational[0] != 100 || r.status != 0 {
		t.Fatalf("informational %v, final %d; want 100 first", r.informational, r.status)
	}
	cl.data(1, true, []byte("body"))
	if r = cl.response(1); r.status != 200 || string(r.body) != "got body" {
		t.Fatalf("%d %q", r.status, r.body)
	}
}

// ---- 5. content-length ----

// A body that does not add up to its content-length makes the request
// malformed (RFC 9113 8.1.1): GOAWAY PROTOCOL_ERROR, even when the
// handler answered before the body came.
func TestContentLengthMismatch(t *testing.T) {
	tests := []struct {
		name   string
		cl     string
		early  bool // the handler answers before reading; the client waits for it
		send   func(cl *client)
		wantOK bool
	}{
		{"matching", "3", false, func(cl *client) { cl.data(1, true, []byte("abc")) }, true},
		{"short", "10", false, func(cl *client) { cl.data(1, true, []byte("abc")) }, false},
		{"long", "2", false, func(cl *client) { cl.data(1, true, []byte("abc")) }, false},
		{"long over two frames", "4", false, func(cl *client) {
			cl.data(1, false, []byte("abc"))
			cl.data(1, true, []byte("de"))
		}, false},
		{"short then trailers", "10", false, func(cl *client) {
			cl.data(1, false, []byte("abc"))
			cl.headers(1, true, "x-t", "1")
		}, false},
		{"answered, short", "10", true, func(cl *client) { cl.data(1, true, []byte("abc")) }, false},
		{"answered, long", "2", true, func(cl *client) { cl.data(1, true, []byte("abc")) }, false},
		{"answered, short then trailers", "10", true, func(cl *client) { cl.headers(1, true, "x-t", "1") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/early" {
					io.WriteString(w, "early")
					return
				}
				b, err := io.ReadAll(r.Body)
				if err != nil {
					return
				}
				fmt.Fprintf(w, "read %d", len(b))
			}))
			cl := ts.connect(t)
			path := "/"
			if tt.early {
				path = "/early"
			}
			cl.request(1, "POST", path, false, "content-length", tt.cl)
			if tt.early {
				if r := cl.response(1); r.status != 200 {
					t.Fatalf("early answer: %d", r.status)
				}
			}
			tt.send(cl)
			if tt.wantOK {
				if r := cl.response(1); r.status != 200 || string(r.body) != "read 3" {
					t.Fatalf("%d %q", r.status, r.body)
				}
				return
			}
			cl.wantGoAway(http2.ErrCodeProtocol)
			cl.wantClosed()
		})
	}
	// END_STREAM on the HEADERS is a body of 0 bytes.
	t.Run("no body, nonzero length", func(t *testing.T) {
		ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		cl := ts.connect(t)
		cl.request(1, "POST", "/", true, "content-length", "5")
		cl.wantGoAway(http2.ErrCodeProtocol)
	})
}

// ---- 6. Connection-specific header fields ----

// A connection-specific header field (RFC 9113 8.2.2) ends the
// connection with PROTOCOL_ERROR; the request before it was answered,
// and the GOAWAY's last stream covers it. "te: trailers" is allowed.
func TestConnectionSpecificHeader(t *testing.T) {
	tests := []struct {
		name, value string
		allowed     bool
	}{
		{"connection", "keep-alive", false},
		{"keep-alive", "timeout=5", false},
		{"proxy-connection", "keep-alive", false},
		{"transfer-encoding", "chunked", false},
		{"upgrade", "websocket", false},
		{"te", "gzip", false},
		{"te", "trailers, deflate", false},
		{"te", "trailers", true},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			var served atomic.Int32
			ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				io.WriteString(w, "ok")
			}))
			cl := ts.connect(t)
			cl.get(1, "/")
			if r := cl.response(1); r.status != 200 || r.afterGoAway {
				t.Fatalf("first request: %d (after GOAWAY %v)", r.status, r.afterGoAway)
			}
			cl.get(3, "/", tt.name, tt.value)
			if tt.allowed {
				if r := cl.response(3); r.status != 200 {
					t.Fatalf("%s: %s: status %d", tt.name, tt.value, r.status)
				}
				return
			}
			// The last stream is the one served: the malformed one was
			// not acted on (RFC 9113 6.8), and a client may retry it.
			ga := cl.wantGoAway(http2.ErrCodeProtocol)
			if ga.LastStreamID != 1 {
				t.Errorf("GOAWAY last stream %d, want 1", ga.LastStreamID)
			}
			cl.wantClosed()
			if n := served.Load(); n != 1 {
				t.Errorf("handler ran %d times, want once (not for the malformed request)", n)
			}
		})
	}
}

// ---- 7. SETTINGS ----

// A SETTINGS frame may repeat a setting; the last value counts (RFC 9113
// 6.5). Here the stream window is first 0, then 65535: if the first
// value stuck, no DATA would come.
func TestRepeatedSettingAccepted(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 1024))
	}))
	cl := ts.connect(t,
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384},
	)
	cl.get(1, "/")
	if r := cl.response(1); r.status != 200 || len(r.body) != 1024 {
		t.Fatalf("%d, %d bytes", r.status, len(r.body))
	}
	// And again on an established connection. (Not with the header table
	// size: x/net's HPACK decoder, used by this client, refuses the two
	// table size updates RFC 7541 4.2 then asks the encoder to send.)
	acks := cl.settingsAcks
	cl.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	cl.flush()
	for cl.settingsAcks == acks {
		cl.next()
	}
	cl.get(3, "/")
	if r := cl.response(3); r.status != 200 || len(r.body) != 1024 || cl.goAway != nil {
		t.Fatalf("%d, %d bytes, GOAWAY %v", r.status, len(r.body), cl.goAway)
	}
}

// ---- 8. MaxConcurrentStreams ----

// Beyond MaxConcurrentStreams unanswered streams, a new one is refused
// (REFUSED_STREAM: the client may retry it); those in flight finish,
// and their places are free again.
func TestMaxConcurrentStreams(t *testing.T) {
	release, released := releaser(t)
	started := make(chan string, 10)
	ts := startServer(t, &Server{MaxConcurrentStreams: 2}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		<-released
		io.WriteString(w, "done "+r.URL.Path)
	}))
	cl := ts.connect(t)
	if got := cl.serverSettings[http2.SettingMaxConcurrentStreams]; got != 2 {
		t.Fatalf("announced MAX_CONCURRENT_STREAMS %d, want 2", got)
	}
	cl.get(1, "/1")
	cl.get(3, "/3")
	waitFor(t, started, "handler 1")
	waitFor(t, started, "handler 3")
	cl.get(5, "/5")
	cl.wantResetStream(5, http2.ErrCodeRefusedStream)
	release()
	for _, id := range []uint32{1, 3} {
		if r := cl.response(id); r.status != 200 || string(r.body) != "done /"+strconv.Itoa(int(id)) {
			t.Fatalf("stream %d: %d %q", id, r.status, r.body)
		}
	}
	cl.get(7, "/7")
	if r := cl.response(7); r.status != 200 {
		t.Fatalf("stream 7 after the others finished: %d (reset %v)", r.status, r.rstCode)
	}
	for len(started) > 0 {
		if p := <-started; p == "/5" {
			t.Fatal("the handler ran for the refused stream")
		}
	}
}

// ---- 9. RST_STREAM from the client ----

// A client's RST_STREAM cancels the request's context, and the
// connection goes on.
func TestClientResetCancelsContext(t *testing.T) {
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			io.WriteString(w, "ok")
			return
		}
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(testTimeout):
			cancelled <- nil
		}
	}))
	cl := ts.connect(t)
	cl.get(1, "/wait")
	waitFor(t, started, "the handler")
	cl.rstStream(1, http2.ErrCodeCancel)
	if err := waitFor(t, cancelled, "the handler's verdict"); !errors.Is(err, context.Canceled) {
		t.Fatalf("request context: %v, want canceled", err)
	}
	cl.get(3, "/")
	if r := cl.response(3); r.status != 200 {
		t.Fatalf("next request: %d", r.status)
	}
}

// ---- 10. Handler panics ----

// syncBuffer is a bytes.Buffer for a logger written from handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A handler that panics has its stream reset with INTERNAL_ERROR (also
// after it sent its headers), the panic is logged unless it is
// http.ErrAbortHandler, and the connection serves the next request.
func TestHandlerPanic(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		logged bool
	}{
		{"panic", "/panic", true},
		{"abort", "/abort", false},
		{"panic after headers", "/partial", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			srv := &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/panic":
					panic("boom-" + r.URL.Path)
				case "/abort":
					panic(http.ErrAbortHandler)
				case "/partial":
					io.WriteString(w, "half")
					w.(http.Flusher).Flush()
					panic("boom-" + r.URL.Path)
				}
				io.WriteString(w, "ok")
			}))
			cl := ts.connect(t)
			cl.get(1, tt.path)
			cl.wantResetStream(1, http2.ErrCodeInternal)
			if r := cl.stream(1); r.ended {
				t.Fatalf("the panicking stream ended cleanly (status %d, %q) before its reset", r.status, r.body)
			}
			cl.get(3, "/")
			if r := cl.response(3); r.status != 200 || string(r.body) != "ok" {
				t.Fatalf("next request: %d %q", r.status, r.body)
			}
			if got := strings.Contains(logs.String(), "boom-"+tt.path); got != tt.logged {
				t.Fatalf("panic logged %v, want %v: %q", got, tt.logged, logs.String())
			}
		})
	}
}

// ---- 11. MaxHeaderBytes ----

// A header list over MaxHeaderBytes is answered 431 without running the
// handler; a smaller one is served.
func TestHeaderListTooLarge(t *testing.T) {
	var served atomic.Int32
	ts := startServer(t, &Server{MaxHeaderBytes: 1024}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	}))
	cl := ts.connect(t)
	if got := cl.serverSettings[http2.SettingMaxHeaderListSize]; got != 1024 {
		t.Errorf("announced MAX_HEADER_LIST_SIZE %d, want 1024", got)
	}
	v := strings.Repeat("v", 300)
	cl.get(1, "/", "x-a", v, "x-b", v, "x-c", v, "x-d", v) // 4 * (3+300+32) > 1024
	if r := cl.response(1); r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", r.status)
	}
	if served.Load() != 0 {
		t.Fatal("the handler ran for a header list over the limit")
	}
	cl.get(3, "/", "x-a", v, "x-b", v)
	if r := cl.response(3); r.status != 200 || served.Load() != 1 {
		t.Fatalf("a header list under the limit: %d", r.status)
	}
}

// ---- 12. WINDOW_UPDATE after the answer ----

// A stream answered before its body came is kept for its flow-control
// rules: a WINDOW_UPDATE that overflows its send window is a stream
// FLOW_CONTROL_ERROR (RFC 9113 6.9.1), not a NO_ERROR reset or nothing.
func TestWindowUpdateOverflowAfterAnswer(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok") // does not read the body
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	if r := cl.response(1); r.status != 200 || !r.ended {
		t.Fatalf("answer: %d", r.status)
	}
	// A WINDOW_UPDATE within bounds changes nothing.
	cl.windowUpdate(1, 1000)
	cl.ping([8]byte{1})
	for len(cl.pings) == 0 {
		cl.next()
	}
	if r := cl.stream(1); r.rst {
		t.Fatalf("a valid WINDOW_UPDATE reset the stream: %v", r.rstCode)
	}
	cl.windowUpdate(1, maxWindow)
	cl.wantResetStream(1, http2.ErrCodeFlowControl)
	cl.get(3, "/")
	if r := cl.response(3); r.status != 200 {
		t.Fatalf("next request: %d", r.status)
	}
}

// ---- 13. Shutdown ----

// Shutdown sends GOAWAY NO_ERROR covering the stream in flight, which
// still completes; a stream opened after the GOAWAY is not served; the
// connection then closes, and a new one is closed at once. With slow
// socket writes the last answer is still written before the close.
func TestShutdownInFlight(t *testing.T) {
	tests := []struct {
		name string
		opts []serverOption
	}{
		{"plain", nil},
		{"slow writes", []serverOption{wrapConn(func(nc net.Conn) net.Conn { return slowWriteConn{nc.(*net.TCPConn)} })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release, released := releaser(t)
			started := make(chan string, 4)
			srv := &Server{}
			ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started <- r.URL.Path
				<-released
				io.WriteString(w, "finished")
			}), tt.opts...)
			cl := ts.connect(t)
			cl.get(1, "/inflight")
			waitFor(t, started, "the handler")
			srv.Shutdown()
			ga := cl.wantGoAway(http2.ErrCodeNo)
			if ga.LastStreamID != 1 {
				t.Fatalf("GOAWAY last stream %d, want 1", ga.LastStreamID)
			}
			cl.get(3, "/late")
			release()
			if r := cl.response(1); r.status != 200 || string(r.body) != "finished" {
				t.Fatalf("in-flight request: %d %q (reset %v)", r.status, r.body, r.rstCode)
			}
			cl.wantClosed()
			if r := cl.streams[3]; r != nil && r.status != 0 {
				t.Fatalf("stream 3, opened after GOAWAY, was answered %d", r.status)
			}
			select {
			case p := <-started:
				t.Fatalf("handler ran for %s after GOAWAY", p)
			default:
			}

			// Nothing is written on it: the server may have closed it already.
			late := ts.dial(t)
			late.wantClosed()
			if late.serverSettings != nil {
				t.Fatal("a connection after Shutdown was served")
			}
		})
	}
}

// ---- 14. IdleTimeout ----

// A connection with no request in flight for IdleTimeout gets GOAWAY
// NO_ERROR and is closed; a request that takes longer than the timeout
// keeps it open.
func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	t.Run("idle", func(t *testing.T) {
		ts := startServer(t, &Server{IdleTimeout: idle}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		start := time.Now()
		cl := ts.connect(t)
		cl.wantGoAway(http2.ErrCodeNo)
		if d := time.Since(start); d < idle*8/10 {
			t.Fatalf("GOAWAY after %v, before the idle timeout %v", d, idle)
		}
		cl.wantClosed()
	})
	t.Run("busy", func(t *testing.T) {
		ts := startServer(t, &Server{IdleTimeout: idle}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * idle)
			io.WriteString(w, "slow")
		}))
		cl := ts.connect(t)
		cl.get(1, "/")
		if r := cl.response(1); r.status != 200 || cl.goAway != nil {
			t.Fatalf("slow request: %d, GOAWAY %v", r.status, cl.goAway)
		}
		answered := time.Now()
		cl.wantGoAway(http2.ErrCodeNo)
		if d := time.Since(answered); d < idle*8/10 {
			t.Fatalf("GOAWAY %v after the answer, want the idle timeout %v", d, idle)
		}
		cl.wantClosed()
	})
}

// ---- 15. Responses ----

// Trailers: a field named in the Trailer header and set after the
// headers went out, and one set with http.TrailerPrefix, come in a
// HEADERS frame that ends the stream.
func TestResponseTrailers(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	r := cl.response(1)
	if r.status != 200 || string(r.body) != "body" || r.headerBlocks != 2 {
		t.Fatalf("%d %q, %d header blocks; want 200, body, headers and trailers", r.status, r.body, r.headerBlocks)
	}
	if r.trailer.Get("x-checksum") != "abc" || r.trailer.Get("x-late") != "late" {
		t.Fatalf("trailers %v", r.trailer)
	}
	if r.header.Get("x-checksum") != "" || r.header.Get("x-late") != "" {
		t.Fatalf("trailer fields in the headers: %v", r.header)
	}

	// The same seen by x/net's Transport.
	resp, err := transportClient(t, ts).Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "late" {
		t.Fatalf("Transport saw trailers %v", resp.Trailer)
	}
}

// A 103 Early Hints goes out at once, before the handler decides its
// final answer; the 200 follows.
func TestEarlyHints(t *testing.T) {
	release, released := releaser(t)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		<-released
		io.WriteString(w, "page")
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	r := cl.stream(1)
	for len(r.informational) == 0 {
		cl.next()
	}
	if r.informational[0] != 103 || r.infoHeaders[0].Get("link") != "</style.css>; rel=preload" || r.status != 0 {
		t.Fatalf("informational %v %v, final %d", r.informational, r.infoHeaders, r.status)
	}
	release()
	cl.response(1)
	if r.status != 200 || string(r.body) != "page" || len(r.informational) != 1 {
		t.Fatalf("final %d %q after %v", r.status, r.body, r.informational)
	}
}

// Flush sends what the handler wrote so far: the client has the first
// chunk before the handler writes the second.
func TestFlusherStreams(t *testing.T) {
	release, released := releaser(t)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-released
		io.WriteString(w, "second")
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	r := cl.stream(1)
	for string(r.body) != "first" {
		if r.done() || len(r.body) > 5 {
			t.Fatalf("got %q before the handler was released", r.body)
		}
		cl.next()
	}
	release()
	cl.response(1)
	if string(r.body) != "firstsecond" || !r.ended {
		t.Fatalf("body %q", r.body)
	}
}

// 204 and 304 have no body: Write says http.ErrBodyNotAllowed and no
// DATA is sent.
func TestBodyNotAllowed(t *testing.T) {
	for _, code := range []int{http.StatusNoContent, http.StatusNotModified} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			errc := make(chan error, 1)
			ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(code)
				_, err := io.WriteString(w, "not allowed")
				errc <- err
			}))
			cl := ts.connect(t)
			cl.get(1, "/")
			r := cl.response(1)
			if err := waitFor(t, errc, "the handler"); err != http.ErrBodyNotAllowed {
				t.Fatalf("Write: %v, want ErrBodyNotAllowed", err)
			}
			if r.status != code || len(r.body) != 0 || r.dataFrames != 0 || r.header.Get("content-type") != "" {
				t.Fatalf("%d, body %q in %d DATA, content-type %q", r.status, r.body, r.dataFrames, r.header.Get("content-type"))
			}
		})
	}
}

// Writing more than the Content-Length the handler declared fails with
// http.ErrContentLength; what fitted is sent.
func TestWriteBeyondContentLength(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		body   string
	}{
		{"second write", []string{"hello", "!"}, "hello"},
		{"one write", []string{"hello!"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errc := make(chan error, 1)
			ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5")
				var err error
				for _, s := range tt.writes {
					if _, err = io.WriteString(w, s); err != nil {
						break
					}
				}
				errc <- err
			}))
			cl := ts.connect(t)
			cl.get(1, "/")
			r := cl.response(1)
			if err := waitFor(t, errc, "the handler"); err != http.ErrContentLength {
				t.Fatalf("Write: %v, want ErrContentLength", err)
			}
			if string(r.body) != tt.body || r.header.Get("content-length") != "5" {
				t.Fatalf("body %q, content-length %q", r.body, r.header.Get("content-length"))
			}
		})
	}
}

// HEAD is answered with the headers alone: END_STREAM on the HEADERS,
// no DATA, though the handler's Write succeeds.
func TestHEAD(t *testing.T) {
	errc := make(chan error, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		n, err := io.WriteString(w, "a body for GET")
		if err == nil && n != 14 {
			err = fmt.Errorf("wrote %d", n)
		}
		errc <- err
	}))
	cl := ts.connect(t)
	cl.request(1, "HEAD", "/", true)
	r := cl.response(1)
	if err := waitFor(t, errc, "the handler"); err != nil {
		t.Fatalf("Write on HEAD: %v", err)
	}
	if r.status != 200 || r.dataFrames != 0 || !r.ended || r.header.Get("content-type") != "text/plain" {
		t.Fatalf("%d, %d DATA frames, ended %v, %v", r.status, r.dataFrames, r.ended, r.header)
	}
}

// "Connection: close" from a handler is not sent (HTTP/2 has no such
// field) but ends the connection gracefully after the response.
func TestHandlerConnectionClose(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	r := cl.response(1)
	if r.status != 200 || string(r.body) != "bye" || r.afterGoAway {
		t.Fatalf("%d %q, after GOAWAY %v", r.status, r.body, r.afterGoAway)
	}
	if len(r.header.Values("connection")) > 0 {
		t.Fatal("connection header sent over HTTP/2")
	}
	if ga := cl.wantGoAway(http2.ErrCodeNo); ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY last stream %d", ga.LastStreamID)
	}
	cl.wantClosed()
}

// ---- 16. Rapid reset ----

// Streams opened and reset at once leave their handlers running; once
// more than four times MaxConcurrentStreams of them run, the connection
// ends with ENHANCE_YOUR_CALM (CVE-2023-44487). Up to that many it is
// served.
func TestRapidReset(t *testing.T) {
	const limit = 4
	_, released := releaser(t)
	started := make(chan struct{}, 8*limit)
	ts := startServer(t, &Server{MaxConcurrentStreams: limit}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-released // ignores its cancelled context, as slow handlers do
	}))
	cl := ts.connect(t)
	id := uint32(1)
	for i := 0; i < 4*limit; i++ {
		cl.batch(func() {
			cl.get(id, "/")
			cl.rstStream(id, http2.ErrCodeCancel)
		})
		id += 2
	}
	for i := 0; i < 4*limit; i++ {
		waitFor(t, started, "handler "+strconv.Itoa(i))
	}
	cl.ping([8]byte{'a', 'l', 'l'})
	for len(cl.pings) == 0 {
		cl.next()
	}
	if cl.goAway != nil {
		t.Fatalf("GOAWAY %v with %d handlers running, the allowed number", cl.goAway.ErrCode, 4*limit)
	}
	cl.batch(func() {
		cl.get(id, "/")
		cl.rstStream(id, http2.ErrCodeCancel)
	})
	cl.wantGoAway(http2.ErrCodeEnhanceYourCalm)
}

// ---- 17. Protocol errors ----

// Frames that break the connection's rules end it with a GOAWAY of the
// code RFC 9113 gives (sections 3.4, 5.1, 5.1.1, 6.5.2, 6.9).
func TestConnectionErrors(t *testing.T) {
	protocol, flow := http2.ErrCodeProtocol, http2.ErrCodeFlowControl
	tests := []struct {
		name      string
		handshake bool // send the preface and SETTINGS first
		send      func(cl *client)
		code      http2.ErrCode
	}{
		{"DATA on idle stream", true, func(cl *client) { cl.data(1, true, []byte("x")) }, protocol},
		{"HEADERS on even stream", true, func(cl *client) { cl.get(2, "/") }, protocol},
		{"lower stream id", true, func(cl *client) {
			cl.get(5, "/")
			cl.response(5)
			cl.get(3, "/")
		}, protocol},
		{"WINDOW_UPDATE on idle stream", true, func(cl *client) { cl.windowUpdate(7, 100) }, protocol},
		{"RST_STREAM on idle stream", true, func(cl *client) { cl.rstStream(9, http2.ErrCodeCancel) }, protocol},
		{"PUSH_PROMISE", true, func(cl *client) {
			cl.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: cl.encode(":method", "GET"), EndHeaders: true})
			cl.flush()
		}, protocol},
		{"first frame not SETTINGS", false, func(cl *client) {
			cl.wbuf.WriteString(http2.ClientPreface)
			cl.ping([8]byte{})
		}, protocol},
		{"first frame a SETTINGS ACK", false, func(cl *client) {
			cl.wbuf.WriteString(http2.ClientPreface)
			cl.fr.WriteSettingsAck()
			cl.flush()
		}, protocol},
		{"SETTINGS_ENABLE_PUSH=2", true, func(cl *client) {
			cl.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 2})
			cl.flush()
		}, protocol},
		{"SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", true, func(cl *client) {
			cl.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
			cl.flush()
		}, flow},
		{"SETTINGS_MAX_FRAME_SIZE under 16384", true, func(cl *client) {
			cl.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100})
			cl.flush()
		}, protocol},
		{"connection window over 2^31-1", true, func(cl *client) { cl.windowUpdate(0, maxWindow) }, flow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			cl := ts.dial(t)
			if tt.handshake {
				cl.handshake()
			}
			tt.send(cl)
			cl.wantGoAway(tt.code)
			cl.wantClosed()
		})
	}
}

// A SETTINGS_INITIAL_WINDOW_SIZE change applies to the open streams'
// send windows; one it pushes past 2^31-1 is a connection
// FLOW_CONTROL_ERROR (RFC 9113 6.9.2).
func TestInitialWindowChangeOverflowsStream(t *testing.T) {
	_, released := releaser(t)
	started := make(chan struct{}, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-released
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	waitFor(t, started, "the handler")
	cl.windowUpdate(1, maxWindow-65535) // the stream's window is now 2^31-1
	cl.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
	cl.flush()
	cl.wantGoAway(http2.ErrCodeFlowControl)
}

// PING is answered with an ACK carrying the same 8 bytes; a PING ACK
// from the client is not answered.
func TestPing(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cl := ts.connect(t)
	cl.fr.WritePing(true, [8]byte{9, 9})
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	cl.ping(data)
	for len(cl.pings) == 0 {
		cl.next()
	}
	cl.silent(func(http2.Frame) bool { return true })
	if len(cl.pings) != 1 || cl.pings[0] != data {
		t.Fatalf("PING ACKs %v, want one with %v", cl.pings, data)
	}
}

// A connection that does not start with the preface is closed without
// a frame.
func TestBadPreface(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cl := ts.dial(t)
	cl.wbuf.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	cl.flush()
	cl.wantClosed()
	if cl.serverSettings != nil || cl.goAway != nil {
		t.Fatal("the server spoke HTTP/2 to an HTTP/1 client")
	}
}

// A HEADERS frame that is malformed as a request is a stream error
// (RST_STREAM PROTOCOL_ERROR), and the connection goes on.
func TestMalformedRequestIsStreamError(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
	}{
		{"no path", []string{":method", "GET", ":scheme", "http", ":authority", "x"}},
		{"no method", []string{":scheme", "http", ":authority", "x", ":path", "/"}},
		{"relative path", []string{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "a"}},
		{"response pseudo-field", []string{":method", "GET", ":scheme", "http", ":path", "/", ":status", "200"}},
		{":protocol (RFC 8441), not offered", []string{":method", "GET", ":protocol", "websocket", ":scheme", "http", ":authority", "x", ":path", "/chat"}},
		{"bad method", []string{":method", "G(E)T", ":scheme", "http", ":authority", "x", ":path", "/"}},
		{"CONNECT with path", []string{":method", "CONNECT", ":scheme", "http", ":authority", "x:443", ":path", "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			}))
			cl := ts.connect(t)
			cl.headers(1, true, tt.fields...)
			cl.wantResetStream(1, http2.ErrCodeProtocol)
			cl.get(3, "/")
			if r := cl.response(3); r.status != 200 {
				t.Fatalf("next request: %d", r.status)
			}
		})
	}
}

// ---- 18. ResponseController deadlines ----

// SetReadDeadline through http.ResponseController makes a Read that
// waits for a body that never comes return a timeout error.
func TestReadDeadline(t *testing.T) {
	type result struct {
		err     error
		elapsed time.Duration
	}
	res := make(chan result, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		start := time.Now()
		if err := rc.SetReadDeadline(start.Add(100 * time.Millisecond)); err != nil {
			res <- result{err: fmt.Errorf("SetReadDeadline: %w", err)}
			return
		}
		_, err := r.Body.Read(make([]byte, 10))
		res <- result{err, time.Since(start)}
		w.WriteHeader(http.StatusRequestTimeout)
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	got := waitFor(t, res, "the handler's Read")
	var ne net.Error
	if !os.IsTimeout(got.err) || !errors.As(got.err, &ne) || !ne.Timeout() {
		t.Fatalf("Read: %v, want a timeout", got.err)
	}
	if got.elapsed < 90*time.Millisecond {
		t.Fatalf("Read timed out after %v, before the deadline", got.elapsed)
	}
	if r := cl.response(1); r.status != http.StatusRequestTimeout {
		t.Fatalf("status %d", r.status)
	}
}

// ---- ConfigureServer ----

// ConfigureServer makes an http.Server's TLS listener speak HTTP/2
// through the engine: requests see the TLS state and net/http's
// per-connection context, and the server's Shutdown sends GOAWAY.
func TestConfigureServerTLS(t *testing.T) {
	srv := &Server{}
	hts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, isServer := r.Context().Value(http.ServerContextKey).(*http.Server)
		proto := ""
		if r.TLS != nil {
			proto = r.TLS.NegotiatedProtocol
		}
		fmt.Fprintf(w, "%s tls=%v proto=%s server-ctx=%v", r.Proto, r.TLS != nil, proto, isServer)
	}))
	ConfigureServer(hts.Config, srv)
	if hts.Config.TLSConfig.NextProtos[0] != "h2" {
		t.Fatalf("NextProtos %v, want h2 first", hts.Config.TLSConfig.NextProtos)
	}
	hts.TLS = hts.Config.TLSConfig
	hts.StartTLS()
	t.Cleanup(hts.Close)

	tr := &http2.Transport{TLSClientConfig: hts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: testTimeout}
	resp, err := hc.Get(hts.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "HTTP/2.0 tls=true proto=h2 server-ctx=true"; string(b) != want {
		t.Fatalf("handler saw %q, want %q", b, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := hts.Config.Shutdown(ctx); err != nil {
		t.Fatalf("http.Server.Shutdown: %v (the HTTP/2 connection did not end)", err)
	}
	srv.mu.Lock()
	shutting, n := srv.shutting, len(srv.conns)
	srv.mu.Unlock()
	if !shutting || n != 0 {
		t.Fatalf("engine shutting %v with %d connections after http.Server.Shutdown", shutting, n)
	}
}

// ---- More engine behaviour ----

// A response that finishes while the read loop holds only part of the
// client's next frame goes out at once: the engine does not wait for
// the rest of that frame before flushing.
func TestResponseNotHeldByPartialFrame(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	cl := ts.connect(t)
	var ping bytes.Buffer
	http2.NewFramer(&ping, nil).WritePing(false, [8]byte{7})
	cl.batch(func() {
		cl.get(1, "/")
		cl.wbuf.Write(ping.Bytes()[:4]) // a frame header cut short
	})
	if r := cl.response(1); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	cl.wbuf.Write(ping.Bytes()[4:])
	cl.flush()
	for len(cl.pings) == 0 {
		cl.next()
	}
}

// MaxReadFrameSize is the largest frame accepted: announced when it is
// not the protocol's 16 KiB, and a larger frame is FRAME_SIZE_ERROR.
func TestMaxReadFrameSize(t *testing.T) {
	tests := []struct {
		name     string
		max      uint32
		announce uint32 // 0: not announced
		frame    int
		ok       bool
	}{
		{"default, 16 KiB frame", 0, 0, 16384, true},
		{"default, one byte more", 0, 0, 16385, false},
		{"1 MiB, 100 KB frame", 1 << 20, 1 << 20, 100000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{MaxReadFrameSize: tt.max}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n, err := io.Copy(io.Discard, r.Body); err == nil {
					fmt.Fprint(w, n)
				}
			}))
			cl := ts.connect(t)
			if got := cl.serverSettings[http2.SettingMaxFrameSize]; got != tt.announce {
				t.Fatalf("announced MAX_FRAME_SIZE %d, want %d", got, tt.announce)
			}
			cl.request(1, "POST", "/", false)
			cl.data(1, true, make([]byte, tt.frame))
			if !tt.ok {
				cl.wantGoAway(http2.ErrCodeFrameSize)
				return
			}
			if r := cl.response(1); r.status != 200 || string(r.body) != strconv.Itoa(tt.frame) {
				t.Fatalf("%d %q", r.status, r.body)
			}
		})
	}
}

// Content-Type is sniffed from the body when the handler sets none
// (net/http's rule), from the first bytes written whatever their size,
// and not when the body has a Content-Encoding (golang.org/issue/31753:
// compressed bytes would be sniffed as "application/x-gzip").
func TestContentTypeSniffing(t *testing.T) {
	html := "<!DOCTYPE html><html><body>" + strings.Repeat("x", 10000) + "</body></html>"
	gz := []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3}
	tests := []struct {
		name  string
		h     http.HandlerFunc
		ctype string
	}{
		{"small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, html[:100]) }, "text/html; charset=utf-8"},
		{"small writes over 4 KiB", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(html); i += 1000 {
				io.WriteString(w, html[i:min(i+1000, len(html))])
			}
		}, "text/html; charset=utf-8"},
		{"one write over 4 KiB", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, html) }, "text/html; charset=utf-8"},
		{"flushed", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, html[:100])
			w.(http.Flusher).Flush()
		}, "text/html; charset=utf-8"},
		{"content-encoding", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gz)
		}, ""},
		{"nosniff with a type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, html[:100])
		}, "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{}, tt.h)
			cl := ts.connect(t)
			cl.autoWindow = true
			cl.get(1, "/")
			r := cl.response(1)
			if got := r.header.Values("content-type"); tt.ctype == "" && len(got) > 0 || tt.ctype != "" && (len(got) != 1 || got[0] != tt.ctype) {
				t.Fatalf("content-type %q, want %q", got, tt.ctype)
			}
		})
	}
}

// ---- Bugs found in review, each fixed: the tests keep them fixed ----

// The SETTINGS the server announces are valid whatever MaxReadFrameSize
// is set to: out-of-range values (RFC 9113 6.5.2 allows 16384 to
// 2^24-1) are not announced as they are.
func TestAnnouncedSettingsValid(t *testing.T) {
	for _, max := range []uint32{1000, 1 << 25} {
		t.Run(strconv.Itoa(int(max)), func(t *testing.T) {
			ts := startServer(t, &Server{MaxReadFrameSize: max}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			cl := ts.connect(t)
			for id, v := range cl.serverSettings {
				if err := (http2.Setting{ID: id, Val: v}).Valid(); err != nil {
					t.Errorf("server announced %v=%d: %v", id, v, err)
				}
			}
		})
	}
}

// net/http's own trailer example: trailer values set after the headers
// are chosen (WriteHeader), while the small body is still buffered,
// are sent as trailers only, not also in the header block.
func TestDeclaredTrailerNotInHeaders(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "AtEnd1, AtEnd2")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Header().Set("AtEnd1", "value 1")
		io.WriteString(w, "This HTTP response has both headers before this text and trailers at the end.\n")
		w.Header().Set("AtEnd2", "value 2")
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	r := cl.response(1)
	if r.trailer.Get("atend1") != "value 1" || r.trailer.Get("atend2") != "value 2" {
		t.Fatalf("trailers %v", r.trailer)
	}
	if r.header.Get("atend1") != "" || r.header.Get("atend2") != "" {
		t.Fatalf("trailer fields also in the headers: %v", r.header)
	}
}

// A client that sends the rest of a request (DATA, then trailers) after
// the server answered and reset the stream is not punished for it: RFC
// 9113 5.1 says frames on a stream the endpoint reset MUST be ignored
// (they were in flight), so the connection goes on.
func TestFramesAfterServerReset(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "early") // answers without reading the body
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	if r := cl.response(1); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	// More than discardBeforeReset of body: the client is told to stop.
	chunk := make([]byte, 16<<10)
	for sent := 0; sent <= discardBeforeReset; sent += len(chunk) {
		cl.data(1, false, chunk)
	}
	cl.wantResetStream(1, http2.ErrCodeNo)
	cl.headers(1, true, "x-checksum", "1")
	cl.get(3, "/")
	if r := cl.response(3); r.status != 200 || cl.goAway != nil {
		t.Fatalf("next request: %d, GOAWAY %v", r.status, cl.goAway)
	}
}

// A stream answered before its body came still keeps its rules for a
// little body sent meanwhile: a second HEADERS without END_STREAM is
// PROTOCOL_ERROR (h2spec 8.1/1, which sends "test" first and failed when
// that DATA made the engine reset the answered stream NO_ERROR and then
// ignore the HEADERS).
func TestAnsweredStreamKeepsRules(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "early")
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	if r := cl.response(1); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	cl.data(1, false, []byte("test"))
	cl.headers(1, false, "x-test", "ok")
	cl.wantResetStream(1, http2.ErrCodeProtocol)
}

// A HEADERS frame the framer rejects as malformed (an upper-case field
// name, RFC 9113 8.2.1) still opens its stream (RFC 9113 5.1): the
// stream is reset, the body the client already sent for it is ignored,
// and a later HEADERS with a lower id is a PROTOCOL_ERROR (5.1.1).
func TestMalformedHeadersFrameOpensStream(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	t.Run("its DATA is ignored", func(t *testing.T) {
		ts := startServer(t, &Server{}, h)
		cl := ts.connect(t)
		cl.request(1, "POST", "/", false, "X-Upper", "1")
		cl.data(1, true, []byte("body"))
		cl.wantResetStream(1, http2.ErrCodeProtocol)
		cl.get(3, "/")
		if r := cl.response(3); r.status != 200 || cl.goAway != nil {
			t.Fatalf("next request: %d, GOAWAY %v", r.status, cl.goAway)
		}
	})
	// The same when the engine itself rejects the HEADERS for a
	// priority on itself (RFC 9113 5.3.1).
	t.Run("self-dependent, its DATA is ignored", func(t *testing.T) {
		ts := startServer(t, &Server{}, h)
		cl := ts.connect(t)
		cl.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
			BlockFragment: cl.encode(":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/"),
			Priority:      http2.PriorityParam{StreamDep: 1, Weight: 1}})
		cl.flush()
		cl.data(1, true, []byte("body"))
		cl.wantResetStream(1, http2.ErrCodeProtocol)
		cl.get(3, "/")
		if r := cl.response(3); r.status != 200 || cl.goAway != nil {
			t.Fatalf("next request: %d, GOAWAY %v", r.status, cl.goAway)
		}
	})
	t.Run("lower id after it", func(t *testing.T) {
		ts := startServer(t, &Server{}, h)
		cl := ts.connect(t)
		cl.get(5, "/", "X-Upper", "1")
		cl.wantResetStream(5, http2.ErrCodeProtocol)
		cl.get(3, "/")
		cl.wantGoAway(http2.ErrCodeProtocol)
	})
}

// Shutdown on a connection still waiting for the client's preface
// must not make a GOAWAY the server's first frame: RFC 9113 3.4 has the
// server's preface, a SETTINGS frame, first.
func TestShutdownBeforePreface(t *testing.T) {
	srv := &Server{}
	ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cl := ts.dial(t)
	deadline := time.Now().Add(testTimeout)
	for {
		srv.mu.Lock()
		n := len(srv.conns)
		srv.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection was never served")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Shutdown()
	cl.wbuf.WriteString(http2.ClientPreface)
	cl.fr.WriteSettings()
	cl.nc.Write(cl.wbuf.Bytes()) // may fail: the server is closing
	f, err := cl.readFrame(testTimeout)
	if err == nil {
		if _, ok := f.(*http2.SettingsFrame); !ok {
			t.Fatalf("the server's first frame is %v, not SETTINGS", summarize(f))
		}
		cl.file(f)
		cl.wantClosed()
	}
}

// Shutdown does not wait (its documentation says so): a connection
// whose client stopped reading, so that the server's socket write
// blocks, does not hold it, nor the GOAWAY to the other connections.
func TestShutdownDoesNotWaitForStuckConnection(t *testing.T) {
	var written atomic.Int64
	srv := &Server{}
	ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for i := 0; i < 4096; i++ { // up to 256 MiB, far beyond the socket buffers
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
	}))
	stuck := ts.connect(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxWindow})
	stuck.windowUpdate(0, maxWindow-65535)
	stuck.get(1, "/")
	// Wait until the handler makes no progress: the socket is full.
	last, still := int64(-1), 0
	for still < 4 {
		time.Sleep(50 * time.Millisecond)
		if n := written.Load(); n == last && n > 0 {
			still++
		} else {
			last, still = n, 0
		}
	}
	other := ts.connect(t)
	done := make(chan struct{})
	go func() {
		srv.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Shutdown blocked on a connection whose client reads nothing")
	}
	other.wantGoAway(http2.ErrCodeNo)
}

// A response a handler buffered but could not send (its stream was
// reset first) is not sent with another request's response. The
// innocent requests come on another connection, as another client's.
func TestResetResponseNotLeakedToOtherRequests(t *testing.T) {
	const n = 20
	wrote := make(chan struct{}, n)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/secret" {
			io.WriteString(w, "SECRET of another client;")
			wrote <- struct{}{}
			<-r.Context().Done() // the client resets the stream
			return
		}
		io.WriteString(w, "hello")
	}))
	victim := ts.connect(t)
	id := uint32(1)
	for i := 0; i < n; i++ {
		victim.get(id, "/secret")
		waitFor(t, wrote, "the handler's write")
		victim.rstStream(id, http2.ErrCodeCancel)
		id += 2
	}
	time.Sleep(50 * time.Millisecond) // the handlers return and finish
	other := ts.connect(t)
	for id := uint32(1); id < 2*n; id += 2 {
		other.get(id, "/")
		if r := other.response(id); string(r.body) != "hello" || r.header.Get("content-length") != "5" {
			t.Fatalf("stream %d: body %q, content-length %s; want hello, 5", id, r.body, r.header.Get("content-length"))
		}
	}
}

// A handler may read the body on one goroutine while it answers on
// another (HTTP/2 is full duplex; httputil.ReverseProxy does this, its
// Transport reading the body). With Expect: 100-continue the first Read
// decides whether a 100 Continue is still due: that decision must not
// race with WriteHeader. The race is seen by -race (the suite's mode).
func TestExpectContinueReadWhileAnswering(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(r.Body)
			body <- string(b)
		}()
		// Let the reader's first Read come first. (A sleep, not a
		// signal: a signal would order the two for the race detector,
		// as the client's socket would.)
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "got %s", <-body)
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false, "expect", "100-continue")
	r := cl.stream(1)
	for r.status == 0 {
		cl.next()
	}
	cl.data(1, true, []byte("abc"))
	if cl.response(1); string(r.body) != "got abc" || len(r.informational) > 1 {
		t.Fatalf("body %q, informational %v", r.body, r.informational)
	}
}

// A client that opens no window (it reads nothing) does not hold a
// response, and its handler, for ever: after WriteTimeout without window
// the stream is reset CANCEL and the handler's write fails. Without the
// bound the socket, never written to, never times out either.
func TestWindowWaitHasWriteTimeout(t *testing.T) {
	wrote := make(chan error, 1)
	ts := startServer(t, &Server{WriteTimeout: 200 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(make([]byte, 8<<10)) // beyond the 4 KiB buffer: waits for window
		wrote <- err
	}))
	cl := ts.connect(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	start := time.Now()
	cl.get(1, "/")
	cl.wantResetStream(1, http2.ErrCodeCancel)
	if err := waitFor(t, wrote, "the handler's write"); err == nil {
		t.Fatal("the write waiting for window succeeded")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("reset after %v, before the write timeout", d)
	}
}
