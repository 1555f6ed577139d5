package h2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// testTimeout bounds every wait of a test on the server: a read, a
// handler's signal, ServeConn's return. Nothing in this suite waits
// longer, so a broken engine fails a test instead of hanging it.
const testTimeout = 3 * time.Second

// quiet is how long a test listens to be sure that something does not
// come (DATA held back by flow control, a GOAWAY not yet due).
const quiet = 200 * time.Millisecond

// testServer is a loopback listener whose connections are served by
// srv.ServeConn, each as HTTP/2 with prior knowledge (no TLS).
type testServer struct {
	srv  *Server
	addr string
}

type serverOption func(*serverConfig)

type serverConfig struct {
	wrap func(net.Conn) net.Conn
}

// wrapConn makes the server serve wrap(conn) instead of the accepted
// connection (to count its writes).
func wrapConn(wrap func(net.Conn) net.Conn) serverOption {
	return func(c *serverConfig) { c.wrap = wrap }
}

// startServer serves h with srv on a fresh loopback listener. Its
// cleanup closes the listener and fails the test if a ServeConn does
// not return once the clients are gone (clients are cleaned up first:
// they are created later).
func startServer(t *testing.T, srv *Server, h http.Handler, opts ...serverOption) *testServer {
	t.Helper()
	var cfg serverConfig
	for _, o := range opts {
		o(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if cfg.wrap != nil {
				nc = cfg.wrap(nc)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv.ServeConn(nc, h, context.Background())
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(testTimeout + 2*time.Second):
			t.Error("ServeConn did not return after its client closed")
		}
	})
	return ts
}

// countingConn counts the Write calls the server makes on its socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// slowWriteConn makes each of the server's socket writes take a while,
// as on a slow network, keeping CloseWrite (the engine half-closes a
// TCP connection it ends).
type slowWriteConn struct{ *net.TCPConn }

func (c slowWriteConn) Write(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	return c.TCPConn.Write(p)
}

// client is a raw HTTP/2 client: frames written with a Framer into a
// buffer that goes out in one write (flush), frames read with
// deadlines. Its methods fail the test, so call them only from the
// test's goroutine.
type client struct {
	t    *testing.T
	nc   net.Conn
	fr   *http2.Framer
	wbuf bytes.Buffer
	enc  *hpack.Encoder
	ebuf bytes.Buffer
	// hold keeps written frames in wbuf until flush (several frames in
	// one socket write).
	hold bool
	// autoWindow makes the client give back every DATA byte it reads
	// (connection and stream WINDOW_UPDATE), as a real client does.
	autoWindow bool

	serverSettings map[http2.SettingID]uint32
	streams        map[uint32]*response
	goAway         *http2.GoAwayFrame
	pings          [][8]byte
	settingsAcks   int
}

// response is what a client saw of one stream.
type response struct {
	id            uint32
	status        int
	header        http.Header
	informational []int // 1xx statuses, in order
	infoHeaders   []http.Header
	body          []byte
	dataFrames    int
	trailer       http.Header
	headerBlocks  int
	ended         bool // END_STREAM
	rst           bool
	rstCode       http2.ErrCode
	afterGoAway   bool // some of it came after the connection's GOAWAY
}

func (r *response) done() bool { return r.ended || r.rst }

// dial opens a raw TCP connection to ts; nothing is sent.
func (ts *testServer) dial(t *testing.T) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ts.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	cl := &client{t: t, nc: nc, streams: map[uint32]*response{}}
	cl.fr = http2.NewFramer(&cl.wbuf, bufio.NewReader(nc))
	cl.fr.AllowIllegalWrites = true
	cl.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cl.enc = hpack.NewEncoder(&cl.ebuf)
	return cl
}

// connect dials, sends the preface and a SETTINGS frame with settings,
// and waits for the server's SETTINGS and its ACK of ours.
func (ts *testServer) connect(t *testing.T, settings ...http2.Setting) *client {
	t.Helper()
	cl := ts.dial(t)
	cl.handshake(settings...)
	return cl
}

func (cl *client) handshake(settings ...http2.Setting) {
	cl.t.Helper()
	cl.wbuf.WriteString(http2.ClientPreface)
	cl.fr.WriteSettings(settings...)
	cl.flush()
	for cl.serverSettings == nil || cl.settingsAcks == 0 {
		cl.next()
	}
}

// flush writes what the framer buffered, unless hold is set.
func (cl *client) flush() {
	cl.t.Helper()
	if cl.hold || cl.wbuf.Len() == 0 {
		return
	}
	cl.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := cl.nc.Write(cl.wbuf.Bytes()); err != nil {
		cl.t.Fatalf("client write: %v", err)
	}
	cl.wbuf.Reset()
}

// batch buffers the frames f writes and sends them in one write.
func (cl *client) batch(f func()) {
	cl.t.Helper()
	cl.hold = true
	f()
	cl.hold = false
	cl.flush()
}

// encode returns the HPACK block of fields given as name, value pairs.
func (cl *client) encode(fields ...string) []byte {
	cl.ebuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		cl.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(cl.ebuf.Bytes())
}

// headers sends one HEADERS frame (END_HEADERS) with fields.
func (cl *client) headers(id uint32, end bool, fields ...string) {
	cl.t.Helper()
	cl.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: cl.encode(fields...), EndStream: end, EndHeaders: true})
	cl.flush()
}

// request opens stream id with a request for path; extra are more
// fields. end says whether the request has no body.
func (cl *client) request(id uint32, method, path string, end bool, extra ...string) {
	cl.t.Helper()
	fields := append([]string{":method", method, ":scheme", "http", ":authority", "localhost", ":path", path}, extra...)
	cl.headers(id, end, fields...)
}

func (cl *client) get(id uint32, path string, extra ...string) {
	cl.t.Helper()
	cl.request(id, "GET", path, true, extra...)
}

func (cl *client) data(id uint32, end bool, p []byte) {
	cl.t.Helper()
	cl.fr.WriteData(id, end, p)
	cl.flush()
}

func (cl *client) windowUpdate(id, incr uint32) {
	cl.t.Helper()
	cl.fr.WriteWindowUpdate(id, incr)
	cl.flush()
}

func (cl *client) rstStream(id uint32, code http2.ErrCode) {
	cl.t.Helper()
	cl.fr.WriteRSTStream(id, code)
	cl.flush()
}

func (cl *client) ping(data [8]byte) {
	cl.t.Helper()
	cl.fr.WritePing(false, data)
	cl.flush()
}

func (cl *client) stream(id uint32) *response {
	r := cl.streams[id]
	if r == nil {
		r = &response{id: id}
		cl.streams[id] = r
	}
	return r
}

// readFrame reads one frame, waiting at most d.
func (cl *client) readFrame(d time.Duration) (http2.Frame, error) {
	cl.nc.SetReadDeadline(time.Now().Add(d))
	return cl.fr.ReadFrame()
}

// next reads one frame (failing the test after testTimeout) and files
// it: stream frames into their response, control frames into the
// client's state. A GOAWAY is recorded, not fatal.
func (cl *client) next() http2.Frame {
	cl.t.Helper()
	f, err := cl.readFrame(testTimeout)
	if err != nil {
		cl.t.Fatalf("reading a frame: %v", err)
	}
	cl.file(f)
	return f
}

func (cl *client) file(f http2.Frame) {
	cl.t.Helper()
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			cl.settingsAcks++
			return
		}
		if cl.serverSettings == nil {
			cl.serverSettings = map[http2.SettingID]uint32{}
		}
		f.ForeachSetting(func(s http2.Setting) error {
			cl.serverSettings[s.ID] = s.Val
			return nil
		})
		// Acknowledge, as a client must; the server does not wait for it.
		cl.fr.WriteSettingsAck()
		cl.flush()
	case *http2.MetaHeadersFrame:
		r := cl.stream(f.StreamID)
		r.afterGoAway = r.afterGoAway || cl.goAway != nil
		r.headerBlocks++
		h := http.Header{}
		status := 0
		for _, hf := range f.Fields {
			if hf.Name == ":status" {
				status, _ = strconv.Atoi(hf.Value)
				continue
			}
			h.Add(hf.Name, hf.Value)
		}
		switch {
		case status >= 100 && status < 200:
			r.informational = append(r.informational, status)
			r.infoHeaders = append(r.infoHeaders, h)
		case status != 0:
			r.status = status
			r.header = h
		default:
			r.trailer = h
		}
		if f.StreamEnded() {
			r.ended = true
		}
	case *http2.DataFrame:
		r := cl.stream(f.StreamID)
		r.afterGoAway = r.afterGoAway || cl.goAway != nil
		r.body = append(r.body, f.Data()...)
		r.dataFrames++
		if f.StreamEnded() {
			r.ended = true
		}
		if cl.autoWindow && f.Length > 0 {
			cl.fr.WriteWindowUpdate(0, f.Length)
			if !f.StreamEnded() {
				cl.fr.WriteWindowUpdate(f.StreamID, f.Length)
			}
			cl.flush()
		}
	case *http2.RSTStreamFrame:
		r := cl.stream(f.StreamID)
		r.rst = true
		r.rstCode = f.ErrCode
	case *http2.GoAwayFrame:
		// Keep a copy: the framer reuses the frame. Its debug data,
		// which points into the framer's buffer, is not used.
		ga := *f
		cl.goAway = &ga
	case *http2.PingFrame:
		if f.IsAck() {
			cl.pings = append(cl.pings, f.Data)
		}
	}
}

// response reads until stream id ends (END_STREAM or RST_STREAM) and
// returns what came for it. A GOAWAY with an error code before that
// fails the test (GOAWAY NO_ERROR lets the stream finish).
func (cl *client) response(id uint32) *response {
	cl.t.Helper()
	for !cl.stream(id).done() {
		if cl.goAway != nil && cl.goAway.ErrCode != http2.ErrCodeNo {
			cl.t.Fatalf("GOAWAY %v (last stream %d) while waiting for stream %d", cl.goAway.ErrCode, cl.goAway.LastStreamID, id)
		}
		cl.next()
	}
	return cl.stream(id)
}

// wantResetStream reads until stream id is reset (even after it ended:
// a stream answered before its body came may be reset later) and
// checks the code.
func (cl *client) wantResetStream(id uint32, code http2.ErrCode) {
	cl.t.Helper()
	r := cl.stream(id)
	for !r.rst {
		if cl.goAway != nil {
			cl.t.Fatalf("GOAWAY %v while waiting for RST_STREAM on stream %d", cl.goAway.ErrCode, id)
		}
		cl.next()
	}
	if r.rstCode != code {
		cl.t.Fatalf("stream %d reset with %v, want %v", id, r.rstCode, code)
	}
}

// wantGoAway reads until a GOAWAY comes and checks its code.
func (cl *client) wantGoAway(code http2.ErrCode) *http2.GoAwayFrame {
	cl.t.Helper()
	for cl.goAway == nil {
		cl.next()
	}
	if cl.goAway.ErrCode != code {
		cl.t.Fatalf("GOAWAY %v, want %v", cl.goAway.ErrCode, code)
	}
	return cl.goAway
}

// wantClosed reads (and files) frames until the connection ends; it
// must end with EOF or a connection error, not with a read timeout.
func (cl *client) wantClosed() {
	cl.t.Helper()
	for {
		f, err := cl.readFrame(testTimeout)
		if err == nil {
			cl.file(f)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			cl.t.Fatalf("connection still open after %v", testTimeout)
		}
		// EOF, or a reset when the server closed with unread bytes.
		var oe *net.OpError
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &oe) {
			cl.t.Fatalf("connection ended with %v, want EOF", err)
		}
		return
	}
}

// silent checks that for the quiet period nothing but frames for which
// ok returns true arrive. A read that times out leaves the framer
// usable: the server sent nothing, so no frame was cut.
func (cl *client) silent(ok func(http2.Frame) bool) {
	cl.t.Helper()
	deadline := time.Now().Add(quiet)
	for {
		f, err := cl.readFrame(time.Until(deadline))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			cl.t.Fatalf("reading: %v", err)
		}
		if !ok(f) {
			cl.t.Fatalf("unexpected %v during the quiet period", summarize(f))
		}
		cl.file(f)
	}
}

func summarize(f http2.Frame) string {
	switch f := f.(type) {
	case *http2.DataFrame:
		return "DATA stream " + strconv.Itoa(int(f.StreamID)) + " len " + strconv.Itoa(len(f.Data()))
	case *http2.GoAwayFrame:
		return "GOAWAY " + f.ErrCode.String()
	case *http2.RSTStreamFrame:
		return "RST_STREAM " + strconv.Itoa(int(f.StreamID)) + " " + f.ErrCode.String()
	}
	return f.Header().String()
}

// waitFor waits for ch, failing the test after testTimeout.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// releaser is a channel handlers block on until the test (or its
// cleanup) releases them, so that no handler outlives its test.
func releaser(t *testing.T) (release func(), released <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release, ch
}
