package h2guard

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// pipeServer is a guard on one end of a pipe, with the server's reads
// collected as frames and the client's end framed.
type pipeServer struct {
	t      *testing.T
	g      *Conn
	client *http2.Framer
	cconn  net.Conn
	server chan seenFrame // frames the server read through the guard
	fromG  chan seenFrame // frames the client read
}

// seenFrame is what a test needs of a frame (a Framer invalidates the
// frame it returned at its next read).
type seenFrame struct {
	typ    http2.FrameType
	stream uint32
	code   http2.ErrCode // of RST_STREAM
}

func seen(f http2.Frame) seenFrame {
	s := seenFrame{typ: f.Header().Type, stream: f.Header().StreamID}
	if rst, ok := f.(*http2.RSTStreamFrame); ok {
		s.code = rst.ErrCode
	}
	return s
}

func newPipeServer(t *testing.T, hold time.Duration) *pipeServer {
	cEnd, sEnd := net.Pipe()
	t.Cleanup(func() { cEnd.Close(); sEnd.Close() })
	g := New(sEnd)
	g.resetHold = hold
	ps := &pipeServer{t: t, g: g, cconn: cEnd, client: http2.NewFramer(cEnd, cEnd),
		server: make(chan seenFrame, 64), fromG: make(chan seenFrame, 64)}
	go func() {
		pre := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(g, pre); err != nil {
			return
		}
		fr := http2.NewFramer(nil, g)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				close(ps.server)
				return
			}
			ps.server <- seen(f)
		}
	}()
	go func() {
		for {
			f, err := ps.client.ReadFrame()
			if err != nil {
				close(ps.fromG)
				return
			}
			ps.fromG <- seen(f)
		}
	}()
	io.WriteString(cEnd, http2.ClientPreface)
	ps.client.WriteSettings()
	ps.serverRead(http2.FrameSettings)
	return ps
}

func (ps *pipeServer) serverRead(typ http2.FrameType) {
	ps.t.Helper()
	select {
	case f, ok := <-ps.server:
		if !ok || f.typ != typ {
			ps.t.Fatalf("server read %+v, want %v", f, typ)
		}
	case <-time.After(5 * time.Second):
		ps.t.Fatalf("server read no %v", typ)
	}
}

// clientRead returns the next frame the client gets (false after wait).
func (ps *pipeServer) clientRead(wait time.Duration) (seenFrame, bool) {
	select {
	case f, ok := <-ps.fromG:
		return f, ok
	case <-time.After(wait):
		return seenFrame{}, false
	}
}

// answer writes what Go's server writes for a request answered before its
// body: HEADERS, DATA with END_STREAM, RST_STREAM NO_ERROR, in one write.
func (ps *pipeServer) answer(stream uint32) {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: []byte{0x88}, EndHeaders: true})
	fr.WriteData(stream, true, []byte("<h1>h2</h1>"))
	fr.WriteRSTStream(stream, http2.ErrCodeNo)
	go ps.g.Write(b.Bytes()) // a pipe write waits for the reader
	for range 2 {
		if f, ok := ps.clientRead(5 * time.Second); !ok || f.typ == http2.FrameRSTStream {
			ps.t.Fatalf("client got %+v before the answer", f)
		}
	}
}

func (ps *pipeServer) openRequest(stream uint32) {
	c := newClient()
	ps.client.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: c.encode(":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/"), EndHeaders: true})
	ps.serverRead(http2.FrameHeaders)
}

func wantReset(t *testing.T, f seenFrame, ok bool, stream uint32, code http2.ErrCode) {
	t.Helper()
	if !ok || f.typ != http2.FrameRSTStream || f.stream != stream || f.code != code {
		t.Fatalf("client got %+v (%v), want RST_STREAM %d %v", f, ok, stream, code)
	}
}

// A WINDOW_UPDATE that overflows the window of a stream Go has already
// answered and reset gets FLOW_CONTROL_ERROR, never the NO_ERROR Go sent
// first (RFC 9113 6.9.1; h2spec 6.9.1/3 whatever the timing).
func TestEarlyResetBecomesFlowControlError(t *testing.T) {
	ps := newPipeServer(t, time.Minute)
	ps.openRequest(1)
	ps.answer(1)
	if f, ok := ps.clientRead(50 * time.Millisecond); ok {
		t.Fatalf("client got %+v: the early reset was not held", f)
	}
	ps.client.WriteWindowUpdate(1, maxWindow)
	ps.client.WriteWindowUpdate(1, maxWindow)
	f, ok := ps.clientRead(5 * time.Second)
	wantReset(t, f, ok, 1, http2.ErrCodeFlowControl)
	ps.serverRead(http2.FrameWindowUpdate)
}

// The same when the WINDOW_UPDATEs passed to Go before it reset the
// stream: Go's NO_ERROR is replaced.
func TestEarlyResetReplacedWhenOverflowCameFirst(t *testing.T) {
	ps := newPipeServer(t, time.Minute)
	ps.openRequest(1)
	ps.client.WriteWindowUpdate(1, maxWindow)
	ps.client.WriteWindowUpdate(1, maxWindow)
	ps.serverRead(http2.FrameWindowUpdate)
	ps.serverRead(http2.FrameWindowUpdate)
	ps.answer(1)
	f, ok := ps.clientRead(5 * time.Second)
	wantReset(t, f, ok, 1, http2.ErrCodeFlowControl)
}

// A body that starts after the answer gets the held NO_ERROR before the
// server sees its DATA; a client that sends nothing gets it after the
// hold; a window that does not overflow changes nothing.
func TestEarlyResetReleased(t *testing.T) {
	ps := newPipeServer(t, time.Minute)
	ps.openRequest(1)
	ps.answer(1)
	ps.client.WriteWindowUpdate(1, 1000)
	ps.serverRead(http2.FrameWindowUpdate)
	ps.client.WriteData(1, false, []byte("body"))
	f, ok := ps.clientRead(5 * time.Second)
	wantReset(t, f, ok, 1, http2.ErrCodeNo)
	ps.serverRead(http2.FrameData)

	ps = newPipeServer(t, 100*time.Millisecond)
	ps.openRequest(1)
	start := time.Now()
	ps.answer(1)
	f, ok = ps.clientRead(5 * time.Second)
	wantReset(t, f, ok, 1, http2.ErrCodeNo)
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("reset after %v, before the hold", d)
	}
}

// Go's reset passes at once for a request whose body is under way.
func TestResetNotHeldOnceBodyBegan(t *testing.T) {
	ps := newPipeServer(t, time.Minute)
	ps.openRequest(1)
	ps.client.WriteData(1, false, []byte("x"))
	ps.serverRead(http2.FrameData)
	ps.answer(1)
	f, ok := ps.clientRead(5 * time.Second)
	wantReset(t, f, ok, 1, http2.ErrCodeNo)
}
