package h2

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Tests from a review of the engine's concurrency, memory bounds and
// flow control: each failed before the fix it names.

// onlyConn returns the one connection srv serves.
func onlyConn(t *testing.T, srv *Server) *conn {
	t.Helper()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.conns) != 1 {
		t.Fatalf("%d connections, want 1", len(srv.conns))
	}
	for c := range srv.conns {
		return c
	}
	return nil
}

// sync sends a PING and reads until its ACK: the server has processed
// every frame sent before it.
func (cl *client) sync() {
	cl.t.Helper()
	n := len(cl.pings)
	cl.ping([8]byte{'s', 'y', 'n', 'c'})
	for len(cl.pings) == n {
		cl.next()
	}
}

// sendBody sends n bytes on stream id in 16 KiB DATA frames, without
// END_STREAM, and waits until the server has processed them.
func (cl *client) sendBody(id uint32, n int) {
	cl.t.Helper()
	chunk := make([]byte, 16384)
	cl.batch(func() {
		for sent := 0; sent < n; sent += len(chunk) {
			cl.data(id, false, chunk[:min(len(chunk), n-sent)])
		}
	})
	cl.sync()
}

// A write deadline set after a read deadline that has passed still
// ends a write waiting for flow control. The deadline timer was armed
// for the earlier of the two deadlines, the passed one, so nothing woke
// the writer at its own deadline: it waited for a WINDOW_UPDATE forever.
func TestWriteDeadlineAfterPassedReadDeadline(t *testing.T) {
	res := make(chan error, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now()) // done with the body
		rc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := w.Write(make([]byte, 10000)) // the client's window is 0
		res <- err
	}))
	cl := ts.connect(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	cl.get(1, "/")
	if err := waitFor(t, res, "the Write past its deadline"); !errors.Is(err, errTimeout) {
		t.Fatalf("Write: %v, want a timeout", err)
	}
}

// A response that finishes while the read loop waits for the rest of a
// header block (CONTINUATION frames not yet sent) goes out at once. The
// HEADERS frame was whole in the buffer, so the read loop did not flush
// before reading on, and then waited for the CONTINUATION still marked
// as working through frames: handlers left their flushes to it.
func TestResponseNotHeldByUnfinishedHeaderBlock(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond) // the read loop is waiting by now
		}
		io.WriteString(w, "ok")
	}))
	cl := ts.connect(t)
	var rest []byte
	cl.batch(func() {
		cl.get(1, "/slow")
		block := cl.encode(":method", "GET", ":scheme", "http", ":authority", "localhost", ":path", "/", "x-long", strings.Repeat("v", 100))
		cl.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block[:20], EndStream: true})
		rest = block[20:]
	})
	if r := cl.response(1); string(r.body) != "ok" {
		t.Fatalf("stream 1: %q", r.body)
	}
	cl.fr.WriteContinuation(3, true, rest)
	cl.flush()
	if r := cl.response(3); string(r.body) != "ok" {
		t.Fatalf("stream 3: %q", r.body)
	}
}

// Body a handler writes beyond what the engine buffers (4 KiB) reaches
// the client while the handler goes on, as with net/http: a full-duplex
// handler that answers a message and waits for the next one must not
// leave its answer in the connection's buffer. Nothing flushed it until
// the handler returned, flushed, or wrote 64 KiB more.
func TestStreamedWriteReachesClient(t *testing.T) {
	_, released := releaser(t)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // the read loop is waiting by now
		w.Write(make([]byte, 5000))
		<-released
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	r := cl.stream(1)
	for len(r.body) < 5000 {
		cl.next()
	}
}

// A body buffered whole and read in small pieces costs time linear in
// its length. Each Read moved the rest of the buffer down, so a 256 KiB
// body read a byte at a time copied 32 GiB.
func TestBodySmallReads(t *testing.T) {
	const size = 256 << 10
	release, released := releaser(t)
	type result struct {
		n       int
		elapsed time.Duration
	}
	res := make(chan result, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-released
		start := time.Now()
		var b [1]byte
		n := 0
		for {
			if _, err := r.Body.Read(b[:]); err != nil {
				break
			}
			n++
		}
		res <- result{n, time.Since(start)}
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	cl.sendBody(1, size)
	release()
	cl.data(1, true, nil)
	got := waitFor(t, res, "the handler's byte-by-byte read of 256 KiB")
	if got.n != size || got.elapsed > 2*time.Second {
		t.Fatalf("read %d bytes a byte at a time in %v, want %d", got.n, got.elapsed, size)
	}
}

// A stream keeps no buffer for its body once the body is read, reset or
// answered: a client could otherwise make every stream hold the largest
// burst it ever sent (the stream window, 256 KiB), hundreds of streams
// a connection, far beyond the connection's 1 MiB window.
func TestBodyBufferReleased(t *testing.T) {
	bodyCap := func(st *stream) int {
		st.c.mu.Lock()
		defer st.c.mu.Unlock()
		return cap(st.body)
	}
	t.Run("read", func(t *testing.T) {
		release, released := releaser(t)
		res := make(chan int, 1)
		ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-released
			io.ReadFull(r.Body, make([]byte, streamWindow))
			res <- bodyCap(r.Body.(streamBody).st) // the body goes on: no END_STREAM yet
		}))
		cl := ts.connect(t)
		cl.request(1, "POST", "/", false)
		cl.sendBody(1, streamWindow)
		release()
		if n := waitFor(t, res, "the handler"); n > 0 {
			t.Fatalf("a read body keeps a %d-byte buffer", n)
		}
	})
	t.Run("reset", func(t *testing.T) {
		res := make(chan int, 1)
		ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			res <- bodyCap(r.Body.(streamBody).st)
		}))
		cl := ts.connect(t)
		cl.request(1, "POST", "/", false)
		cl.sendBody(1, streamWindow)
		cl.rstStream(1, http2.ErrCodeCancel)
		if n := waitFor(t, res, "the handler"); n > 0 {
			t.Fatalf("a reset stream's handler holds a %d-byte buffer", n)
		}
	})
	t.Run("answered", func(t *testing.T) {
		release, released := releaser(t)
		srv := &Server{}
		ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-released // answers without reading
		}))
		cl := ts.connect(t)
		cl.request(1, "POST", "/", false)
		cl.sendBody(1, 100<<10)
		release()
		cl.response(1)
		c := onlyConn(t, srv)
		c.mu.Lock()
		st := c.streams[1]
		c.mu.Unlock()
		if st == nil {
			t.Fatal("the answered stream is not kept")
		}
		if n := bodyCap(st); n > 0 {
			t.Fatalf("an answered stream keeps a %d-byte buffer", n)
		}
	})
}

// A handler that closes its request body and goes on (answering slowly,
// say) reads no more of it: what the client still sends is given back
// to the connection's window at once. It used to be buffered, unread,
// until the handler returned, so four such streams held the whole
// connection window and every other upload on the connection stopped.
// A Read after Close fails, as net/http's does.
func TestClosedBodyReturnsConnectionWindow(t *testing.T) {
	release, released := releaser(t)
	closed := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body.Close()
		closed <- struct{}{}
		<-released
		_, err := r.Body.Read(make([]byte, 1))
		readErr <- err
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	waitFor(t, closed, "the handler's Close")
	chunk := make([]byte, 16384)
	cl.batch(func() {
		for sent := 0; sent < streamWindow; sent += len(chunk) {
			cl.data(1, false, chunk)
		}
		cl.ping([8]byte{'d', 'o', 'n', 'e'})
	})
	var credit uint32
	for len(cl.pings) == 0 {
		f := cl.next()
		if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 0 {
			credit += wu.Increment
		}
	}
	if credit < streamWindow {
		t.Fatalf("%d bytes of the connection window given back for %d dropped", credit, streamWindow)
	}
	release()
	if err := waitFor(t, readErr, "the Read after Close"); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}

// A Read still waiting when the handler returns (a goroutine the
// handler left, as http.Transport's body writer is after a proxied
// response) ends: it used to wait for the rest of the body, and when
// that ended with END_STREAM or trailers on the answered stream, it
// waited on until the connection closed.
func TestBodyReadAfterHandlerReturns(t *testing.T) {
	res := make(chan error, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			_, err := r.Body.Read(make([]byte, 10))
			res <- err
		}()
		time.Sleep(50 * time.Millisecond) // the Read waits
		io.WriteString(w, "early")
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	if r := cl.response(1); string(r.body) != "early" {
		t.Fatalf("body %q", r.body)
	}
	cl.data(1, true, nil)
	if err := waitFor(t, res, "the left-over Read"); err == nil {
		t.Fatal("the left-over Read succeeded")
	}
}

// A stream answered before its whole body came is reset (NO_ERROR, RFC
// 9113 8.1) once its window is spent. The engine kept it to reset when
// more than an allowance of DATA came; but an answered stream's window
// is not given back, so with less than that allowance left the client
// could never send enough, no WINDOW_UPDATE came either, and the upload
// hung.
func TestAnsweredStreamWithSpentWindowIsReset(t *testing.T) {
	for _, tt := range []struct {
		name         string
		before, then int // body bytes sent before the answer, and after
	}{
		{"spent before the answer", streamWindow, 0},
		{"spent after it", streamWindow - 16<<10, 16 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release, released := releaser(t)
			ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-released
				io.WriteString(w, "too large")
			}))
			cl := ts.connect(t)
			cl.request(1, "POST", "/", false)
			cl.sendBody(1, tt.before)
			release()
			if r := cl.response(1); string(r.body) != "too large" {
				t.Fatalf("body %q", r.body)
			}
			time.Sleep(50 * time.Millisecond) // the handler returns after its response went out
			if tt.then > 0 {
				cl.sendBody(1, tt.then)
			}
			cl.wantResetStream(1, http2.ErrCodeNo)
		})
	}
}

// The connection's write buffers do not keep the size of the largest
// burst they carried: a client that allows 16 MiB frames and wide
// windows made one Write of a large body one frame, and both buffers
// (the one being filled and the spare) kept that size for the life of
// the connection.
func TestOutBufferReleasedAfterBurst(t *testing.T) {
	const size = 4 << 20
	srv := &Server{}
	ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, size))
	}))
	cl := ts.dial(t)
	cl.fr.SetMaxReadFrameSize(1<<24 - 1)
	cl.handshake(
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1<<24 - 1},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	cl.windowUpdate(0, 1<<30)
	cl.get(1, "/")
	if r := cl.response(1); len(r.body) != size {
		t.Fatalf("got %d bytes", len(r.body))
	}
	c := onlyConn(t, srv)
	c.wmu.Lock() // no flush in progress
	c.mu.Lock()
	held := cap(c.out) + cap(c.spare)
	c.mu.Unlock()
	c.wmu.Unlock()
	if held > 1<<20 {
		t.Fatalf("the connection keeps %d bytes of write buffers", held)
	}
}

// DATA the client sent before it heard of our reset of a stream is
// ignored (RFC 9113 5.1), not answered with RST_STREAM frame by frame:
// each of those resets also took a place among the streams reset lately,
// so a burst of them on one stream made the engine forget another
// reset stream, whose trailers, in flight, then ended the connection.
func TestDataInFlightAfterResetIgnored(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "early") // answers without reading the body
	}))
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	cl.request(3, "POST", "/", false)
	cl.response(1)
	cl.response(3)
	time.Sleep(50 * time.Millisecond) // the handlers return after their responses went out
	chunk := make([]byte, 16<<10)
	cl.batch(func() {
		// More than an answered stream takes: the server resets 1, and 3.
		for sent := 0; sent <= discardBeforeReset; sent += len(chunk) {
			cl.data(1, false, chunk)
		}
		for sent := 0; sent <= discardBeforeReset; sent += len(chunk) {
			cl.data(3, false, chunk)
		}
		for i := 0; i < 2*len(conn{}.resetIDs); i++ {
			cl.data(3, false, []byte("b")) // sent before the RST came
		}
		cl.headers(1, true, "x-checksum", "1") // trailers, also in flight
	})
	cl.get(5, "/")
	if r := cl.response(5); string(r.body) != "early" {
		t.Fatalf("next request: %q", r.body)
	}
	for _, id := range []uint32{1, 3} {
		if r := cl.stream(id); !r.rst || r.rstCode != http2.ErrCodeNo {
			t.Errorf("stream %d: reset %v with %v, want one RST_STREAM NO_ERROR", id, r.rst, r.rstCode)
		}
	}
	cl.silent(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return !ok })
}

// A GOAWAY after a graceful one names no later stream than it did (RFC
// 9113 6.8), though the client opened more meanwhile (ignored): the
// client may have retried those on another connection already.
func TestSecondGoAwayKeepsLastStream(t *testing.T) {
	srv := &Server{}
	_, released := releaser(t)
	started := make(chan struct{}, 1)
	ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-released
	}))
	cl := ts.connect(t)
	cl.get(1, "/")
	waitFor(t, started, "the handler")
	srv.Shutdown()
	if ga := cl.wantGoAway(http2.ErrCodeNo); ga.LastStreamID != 1 {
		t.Fatalf("graceful GOAWAY names stream %d, want 1", ga.LastStreamID)
	}
	cl.get(3, "/") // ignored
	cl.fr.WritePing(false, [8]byte{})
	cl.wbuf.Bytes()[5+3] = 1 // a PING on stream 1: PROTOCOL_ERROR
	cl.flush()
	for cl.goAway.ErrCode == http2.ErrCodeNo {
		cl.next()
	}
	if ga := cl.goAway; ga.ErrCode != http2.ErrCodeProtocol || ga.LastStreamID != 1 {
		t.Fatalf("second GOAWAY %v naming stream %d, want PROTOCOL_ERROR naming 1", ga.ErrCode, ga.LastStreamID)
	}
}

// closeBlockingConn fails its writes once told to, and its Close waits
// until released, as a TLS connection's Close does when it writes
// close_notify to a client that reads nothing.
type closeBlockingConn struct {
	net.Conn
	failWrites atomic.Bool
	released   <-chan struct{}
}

func (c *closeBlockingConn) Write(p []byte) (int, error) {
	if c.failWrites.Load() {
		return 0, errors.New("write timed out")
	}
	return c.Conn.Write(p)
}

func (c *closeBlockingConn) Close() error {
	<-c.released
	return c.Conn.Close()
}

// When a write fails, the connection's handlers learn it at once: the
// socket used to be closed with the connection's lock held, so they
// waited for the lock as long as the Close took.
func TestFailedWriteDoesNotHoldLockWhileClosing(t *testing.T) {
	released := make(chan struct{})
	var wrapped atomic.Pointer[closeBlockingConn]
	reading := make(chan struct{}, 1)
	res := make(chan error, 1)
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reading <- struct{}{}
		_, err := r.Body.Read(make([]byte, 10))
		res <- err
	}), wrapConn(func(nc net.Conn) net.Conn {
		c := &closeBlockingConn{Conn: nc, released: released}
		wrapped.Store(c)
		return c
	}))
	t.Cleanup(func() { close(released) }) // before the server's cleanup waits for ServeConn
	cl := ts.connect(t)
	cl.request(1, "POST", "/", false)
	waitFor(t, reading, "the handler")
	wrapped.Load().failWrites.Store(true)
	cl.ping([8]byte{1}) // the answer's write fails
	if err := waitFor(t, res, "the handler's Read after the write failed"); err == nil {
		t.Fatal("Read succeeded")
	}
}

// A WINDOW_UPDATE of increment 0 for a stream the client never opened
// ends the connection (RFC 9113 5.1: any frame but HEADERS and PRIORITY
// on an idle stream). It used to reset the idle stream, which RFC 9113
// 6.4 forbids, and a HEADERS opening it later went unanswered.
func TestZeroWindowUpdateOnIdleStream(t *testing.T) {
	ts := startServer(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	cl := ts.connect(t)
	cl.windowUpdate(5, 0)
	cl.get(5, "/")
	for cl.goAway == nil && !cl.stream(5).done() {
		cl.next()
	}
	if cl.goAway == nil || cl.goAway.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("GOAWAY %v, stream 5 reset %v with %v; want GOAWAY PROTOCOL_ERROR", cl.goAway, cl.stream(5).rst, cl.stream(5).rstCode)
	}
}
