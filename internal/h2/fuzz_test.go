package h2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fuzzHandler does a little of everything a handler does to the engine,
// chosen by path: it reads bodies, answers small and large, flushes,
// sends trailers and early hints, and panics.
var fuzzHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	switch {
	case strings.HasPrefix(r.URL.Path, "/big"):
		chunk := make([]byte, 16<<10)
		for i := 0; i < 8; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case strings.HasPrefix(r.URL.Path, "/flush"):
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		io.WriteString(w, "second")
	case strings.HasPrefix(r.URL.Path, "/trailer"):
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", fmt.Sprint(n))
	case strings.HasPrefix(r.URL.Path, "/hints"):
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(r.URL.Path, "/panic"):
		panic(http.ErrAbortHandler)
	default:
		fmt.Fprintf(w, "read %d %v", n, err)
	}
})

// fuzzConversation builds what a client sends after the preface.
type fuzzConversation struct {
	buf   bytes.Buffer
	fr    *http2.Framer
	enc   *hpack.Encoder
	block bytes.Buffer
}

func newFuzzConversation() *fuzzConversation {
	c := &fuzzConversation{}
	c.fr = http2.NewFramer(&c.buf, nil)
	c.fr.AllowIllegalWrites = true
	c.enc = hpack.NewEncoder(&c.block)
	return c
}

func (c *fuzzConversation) encode(fields ...string) []byte {
	c.block.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(c.block.Bytes())
}

func (c *fuzzConversation) request(id uint32, method, path string, end bool, extra ...string) {
	fields := append([]string{":method", method, ":scheme", "https", ":authority", "localhost", ":path", path}, extra...)
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.encode(fields...), EndStream: end, EndHeaders: true})
}

// fuzzSeeds are valid conversations (and a few classic mistakes), so
// that the fuzzer starts from inputs that get deep into the engine.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	add := func(build func(c *fuzzConversation)) {
		c := newFuzzConversation()
		build(c)
		seeds = append(seeds, bytes.Clone(c.buf.Bytes()))
	}
	add(func(c *fuzzConversation) { // a GET
		c.fr.WriteSettings()
		c.request(1, "GET", "/", true, "user-agent", "fuzz")
	})
	add(func(c *fuzzConversation) { // a POST with a body and trailers, then GETs
		c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
		c.fr.WriteWindowUpdate(0, 1<<20)
		c.request(1, "POST", "/trailer", false, "trailer", "x-checksum", "content-type", "text/plain")
		c.fr.WriteData(1, false, []byte("hello "))
		c.fr.WriteDataPadded(1, false, []byte("padded"), make([]byte, 7))
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.encode("x-checksum", "42"), EndStream: true, EndHeaders: true})
		c.request(3, "GET", "/flush", true)
		c.request(5, "HEAD", "/", true)
	})
	add(func(c *fuzzConversation) { // flow control: a zero window, then credit
		c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
		c.request(1, "GET", "/big", true)
		c.fr.WriteWindowUpdate(1, 1000)
		c.fr.WriteWindowUpdate(0, 100000)
		c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
		c.fr.WriteWindowUpdate(1, 200000)
	})
	add(func(c *fuzzConversation) { // resets, rapid and late
		c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
		for id := uint32(1); id < 40; id += 2 {
			c.request(id, "GET", "/big", true)
			c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
		c.request(41, "POST", "/", false, "content-length", "100")
		c.fr.WriteData(41, false, []byte("part"))
		c.fr.WriteRSTStream(41, http2.ErrCodeCancel)
		c.fr.WriteData(41, false, []byte("late"))
	})
	add(func(c *fuzzConversation) { // control frames
		c.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
		c.fr.WritePing(false, [8]byte{1, 2, 3})
		c.fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 7})
		c.request(1, "GET", "/hints", true)
		c.fr.WriteSettingsAck()
		c.fr.WritePing(true, [8]byte{})
		c.fr.WriteGoAway(1, http2.ErrCodeNo, []byte("bye"))
	})
	add(func(c *fuzzConversation) { // a header block in CONTINUATIONs, with padding and priority
		c.fr.WriteSettings()
		block := c.encode(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/continued", "cookie", "a=1", "cookie", "b=2")
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:5], EndStream: true, PadLength: 3,
			Priority: http2.PriorityParam{StreamDep: 0, Weight: 200, Exclusive: true}})
		c.fr.WriteContinuation(1, false, block[5:9])
		c.fr.WriteContinuation(1, true, block[9:])
		c.request(3, "GET", "/panic", true)
	})
	add(func(c *fuzzConversation) { // content-length mismatch
		c.fr.WriteSettings()
		c.request(1, "POST", "/", false, "content-length", "10")
		c.fr.WriteData(1, true, []byte("abc"))
	})
	add(func(c *fuzzConversation) { // a connection-specific header after a good request
		c.fr.WriteSettings()
		c.request(1, "GET", "/", true)
		c.request(3, "GET", "/", true, "connection", "keep-alive")
	})
	add(func(c *fuzzConversation) { // Expect: 100-continue and an early answer
		c.fr.WriteSettings()
		c.request(1, "PUT", "/", false, "expect", "100-continue", "content-length", "3")
		c.fr.WriteData(1, true, []byte("abc"))
		c.request(3, "OPTIONS", "*", true)
		c.request(5, "CONNECT", "", true)
	})
	return seeds
}

// FuzzServeConn feeds arbitrary bytes, after the client preface, to a
// connection and checks that the engine neither panics nor hangs: once
// the client has sent its bytes and closed, ServeConn returns promptly.
// What the server writes must be well-formed frames, SETTINGS first.
func FuzzServeConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(runFuzzOne)
}

// fuzzServer serves every iteration, as one server serves many
// connections (its worker pool and date cache are shared).
var fuzzServer = &Server{MaxConcurrentStreams: 16, MaxHeaderBytes: 8 << 10}

// runFuzzOne is one iteration: a connection over net.Pipe, data written
// after the preface, then the close.
func runFuzzOne(t *testing.T, data []byte) {
	if len(data) > 256<<10 {
		data = data[:256<<10] // keep an iteration fast
	}
	sc, cc := net.Pipe()
	defer cc.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fuzzServer.ServeConn(sc, fuzzHandler, context.Background())
	}()
	checked := make(chan error, 1)
	settled := make(chan struct{})
	go func() { checked <- checkServerFrames(cc, settled) }()

	// The input, then a PING whose ACK says the server has worked
	// through it, so that handlers run and answer before the close. An
	// input that leaves a frame open swallows the PING: then the close
	// comes after a short wait (short, as the fuzzer's minimizing runs
	// many such inputs).
	cc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := cc.Write([]byte(http2.ClientPreface)); err == nil {
		if _, err := cc.Write(data); err == nil {
			cc.Write(sentinelPing)
		}
	}
	select {
	case <-settled:
	case <-time.After(25 * time.Millisecond):
	}
	cc.Close()

	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("ServeConn did not return after the client closed")
	}
	if err := <-checked; err != nil {
		t.Fatal(err)
	}
}

// sentinelPing is a PING frame with a payload the fuzzer is unlikely to
// make; its ACK tells the test the server has read the input.
var sentinelPing = func() []byte {
	var b bytes.Buffer
	http2.NewFramer(&b, nil).WritePing(false, sentinelData)
	return b.Bytes()
}()

var sentinelData = [8]byte{'s', 'e', 'n', 't', 'i', 'n', 'e', 'l'}

// checkServerFrames reads what the server writes until the pipe ends:
// frames the framer accepts (sizes, padding, CONTINUATION order),
// SETTINGS first. HPACK is not decoded: x/net's decoder refuses some
// valid table size updates a client's SETTINGS can cause. It closes
// settled when the server acknowledges the sentinel PING, sends GOAWAY
// or ends.
func checkServerFrames(cc net.Conn, settled chan struct{}) error {
	var once sync.Once
	settle := func() { once.Do(func() { close(settled) }) }
	defer settle()
	fr := http2.NewFramer(nil, cc)
	fr.SetMaxReadFrameSize(1<<24 - 1)
	first := true
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) {
				return nil
			}
			io.Copy(io.Discard, cc) // let the server finish writing
			return fmt.Errorf("the server wrote a bad frame: %v", err)
		}
		if first {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				io.Copy(io.Discard, cc)
				return fmt.Errorf("the server's first frame is %v, not SETTINGS", f.Header())
			}
			first = false
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() && f.Data == sentinelData {
				settle()
			}
		case *http2.GoAwayFrame:
			settle()
		}
	}
}
