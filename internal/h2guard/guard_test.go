package h2guard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/http2"
)

// splits are the ways bytes arrive and are read in every test: whole, a
// byte at a time, in odd pieces, and read the way Go's framer reads.
var splits = []struct{ piece, read int }{
	{0, 0}, {0, 4096}, {1, 0}, {1, 1}, {5, 7}, {9, 0}, {13, 4096}, {3, 9},
}

func forEachSplit(t *testing.T, client []byte, check func(t *testing.T, got []byte, v *Violation, wrote []byte)) {
	t.Helper()
	for _, s := range splits {
		t.Run(fmt.Sprintf("piece%d-read%d", s.piece, s.read), func(t *testing.T) {
			got, v, wrote := run(client, s.piece, s.read)
			check(t, got, v, wrote)
		})
	}
}

// goAway parses the frames the guard wrote: exactly one GOAWAY.
func goAway(t *testing.T, wrote []byte) (last uint32, code http2.ErrCode) {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(wrote))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("guard wrote %x, not a GOAWAY: %v", wrote, err)
	}
	ga, ok := f.(*http2.GoAwayFrame)
	if !ok {
		t.Fatalf("guard wrote %v, not a GOAWAY", f)
	}
	if _, err := fr.ReadFrame(); err == nil {
		t.Fatal("guard wrote more than one frame")
	}
	return ga.LastStreamID, ga.ErrCode
}

func wantViolation(t *testing.T, client []byte, rule string, stream, last uint32) {
	t.Helper()
	forEachSplit(t, client, func(t *testing.T, got []byte, v *Violation, wrote []byte) {
		if v == nil {
			t.Fatalf("no violation; server read %d of %d bytes", len(got), len(client))
		}
		if v.Rule != rule || v.Stream != stream || v.Code != http2.ErrCodeProtocol {
			t.Fatalf("violation %v, want %q on stream %d", v, rule, stream)
		}
		l, code := goAway(t, wrote)
		if l != last || code != http2.ErrCodeProtocol {
			t.Fatalf("GOAWAY last %d %v, want last %d PROTOCOL_ERROR", l, code, last)
		}
	})
}

func wantPassThrough(t *testing.T, client []byte) {
	t.Helper()
	forEachSplit(t, client, func(t *testing.T, got []byte, v *Violation, wrote []byte) {
		if v != nil {
			t.Fatalf("violation %v on a valid conversation", v)
		}
		if !bytes.Equal(got, client) {
			t.Fatalf("server read %d bytes, not the %d the client sent", len(got), len(client))
		}
		if len(wrote) != 0 {
			t.Fatalf("guard wrote %x", wrote)
		}
	})
}

// A valid conversation passes byte for byte, however it is cut: preface,
// SETTINGS, requests, a POST with its body, trailers, PING,
// WINDOW_UPDATE, PRIORITY, RST_STREAM, padding and CONTINUATION.
func TestValidConversationPassesUnchanged(t *testing.T) {
	c := newClient().settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	c.fr.WriteWindowUpdate(0, 1<<24)
	c.request(1, true, "user-agent", "test", "te", "trailers", "accept", "*/*")
	c.request(3, true, "user-agent", "test", "te", "") // dynamic table hits
	c.post(5, "11").data(5, false, "hello ").data(5, true, "world")
	c.post(7, "3")
	c.fr.WriteDataPadded(7, false, []byte("ab"), make([]byte, 7))
	c.fr.WriteDataPadded(7, true, []byte("c"), nil)
	c.post(9, "2").data(9, false, "ok")
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 9, BlockFragment: c.encode("x-checksum", "1"), EndStream: true, EndHeaders: true})
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 11, BlockFragment: c.encode(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/padded"),
		EndStream: true, EndHeaders: true, PadLength: 20, Priority: http2.PriorityParam{StreamDep: 0, Weight: 200, Exclusive: true}})
	block := c.encode(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/continued", "cookie", "a=b")
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 13, BlockFragment: block[:5], EndStream: true})
	c.fr.WriteContinuation(13, false, block[5:9])
	c.fr.WriteContinuation(13, true, block[9:])
	c.post(15, "100").data(15, false, "part")
	c.fr.WriteRSTStream(15, http2.ErrCodeCancel)
	c.data(15, false, "late bytes of a reset stream are not counted")
	c.fr.WritePing(false, [8]byte{1})
	c.fr.WritePriority(17, http2.PriorityParam{Weight: 1})
	c.fr.WriteSettingsAck()
	c.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	wantPassThrough(t, c.bytes())
}

// Each connection-specific header field makes the request malformed
// (RFC 9113 8.2.2; h2spec 8.1.2.2): GOAWAY PROTOCOL_ERROR whose last
// stream is the request before.
func TestConnectionSpecificHeaderIsConnectionError(t *testing.T) {
	for _, f := range [][2]string{
		{"connection", "keep-alive"}, {"keep-alive", "timeout=5"}, {"proxy-connection", "keep-alive"},
		{"transfer-encoding", "chunked"}, {"upgrade", "websocket"}, {"te", "gzip"}, {"te", "trailers, deflate"},
	} {
		t.Run(f[0]+"="+f[1], func(t *testing.T) {
			c := newClient().settings().request(1, true).request(3, true, f[0], f[1])
			wantViolation(t, c.bytes(), RuleConnectionHeader, 3, 1)
		})
	}
}

// The field is found wherever the header block puts it: in a
// CONTINUATION, split across frames, behind padding and priority, as a
// dynamic table reference in a later request, and in trailers.
func TestConnectionHeaderFoundAnywhereInBlock(t *testing.T) {
	t.Run("continuation", func(t *testing.T) {
		c := newClient().settings()
		block := c.encode(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/", "connection", "close")
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:len(block)-8], EndStream: true})
		c.fr.WriteContinuation(1, false, block[len(block)-8:len(block)-3]) // "connection" is cut in two
		c.fr.WriteContinuation(1, true, block[len(block)-3:])
		wantViolation(t, c.bytes(), RuleConnectionHeader, 1, 0)
	})
	t.Run("padded-priority", func(t *testing.T) {
		c := newClient().settings()
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true, PadLength: 255,
			BlockFragment: c.encode(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/", "upgrade", "h2c"),
			Priority:      http2.PriorityParam{StreamDep: 0, Weight: 15}})
		wantViolation(t, c.bytes(), RuleConnectionHeader, 1, 0)
	})
	t.Run("indexed-later", func(t *testing.T) {
		c := newClient().settings()
		c.request(1, true, "x-a", "1")
		before := len(c.bytes())
		c.encode("keep-alive", "1") // enters the dynamic table, the block itself is not sent
		c.request(3, true, "keep-alive", "1")
		if len(c.bytes())-before > 30 {
			t.Fatal("the second request is not a dynamic-table reference")
		}
		// The encoder's table now differs from the peer's: rebuild the
		// stream with the first block sent too.
		c = newClient().settings()
		c.request(1, true, "keep-alive", "1")
		wantViolation(t, c.bytes(), RuleConnectionHeader, 1, 0)
		c = newClient().settings()
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.encode(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/", "x-keep", "keep-alive"), EndStream: true, EndHeaders: true})
		c.request(3, true, "proxy-connection", "x")
		c.request(5, true, "proxy-connection", "x") // indexed now
		got, v, _ := run(c.bytes(), 0, 0)
		if v == nil || v.Stream != 3 {
			t.Fatalf("violation %v, want stream 3 (read %d)", v, len(got))
		}
	})
	t.Run("trailers", func(t *testing.T) {
		c := newClient().settings().post(1, "2").data(1, false, "ok")
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.encode("transfer-encoding", "chunked"), EndStream: true, EndHeaders: true})
		wantViolation(t, c.bytes(), RuleConnectionHeader, 1, 1)
	})
}

// A body that does not add up to its content-length is malformed (RFC
// 9113 8.1.1; h2spec 8.1.2.6): too long in one frame or over several,
// too short at END_STREAM or at trailers, counted without padding.
func TestContentLengthMismatchIsConnectionError(t *testing.T) {
	for name, c := range map[string]*client{
		"longer-one-frame":  newClient().settings().post(1, "1").data(1, true, "test"),
		"longer-two-frames": newClient().settings().post(1, "1").data(1, false, "test").data(1, true, "test"),
		"longer-no-end":     newClient().settings().post(1, "5").data(1, false, "abc").data(1, false, "def"),
		"shorter":           newClient().settings().post(1, "10").data(1, false, "abc").data(1, true, ""),
	} {
		t.Run(name, func(t *testing.T) {
			wantViolation(t, c.bytes(), RuleContentLength, 1, 1)
		})
	}
	t.Run("conflicting-values", func(t *testing.T) { // the request never reaches Go: last stream 0
		c := newClient().settings().request(1, false, "content-length", "1", "content-length", "2")
		wantViolation(t, c.bytes(), RuleContentLength, 1, 0)
	})
	t.Run("padded", func(t *testing.T) {
		c := newClient().settings().post(1, "3")
		c.fr.WriteDataPadded(1, true, []byte("abcd"), make([]byte, 10))
		wantViolation(t, c.bytes(), RuleContentLength, 1, 1)
	})
	t.Run("short-at-trailers", func(t *testing.T) {
		c := newClient().settings().post(1, "3").data(1, false, "ab")
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.encode("x-t", "1"), EndStream: true, EndHeaders: true})
		wantViolation(t, c.bytes(), RuleContentLength, 1, 1)
	})
	t.Run("other-streams-unaffected", func(t *testing.T) {
		c := newClient().settings().post(1, "3").post(3, "1").data(3, true, "x").data(1, true, "abc")
		wantPassThrough(t, c.bytes())
	})
}

// settingsFrame is a SETTINGS frame with the given (id, value) pairs.
func settingsFrame(pairs ...uint32) []byte {
	f := make([]byte, 9+len(pairs)/2*6)
	putFrameHeader(f, uint32(len(pairs)/2*6), frameSettings, 0, 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		binary.BigEndian.PutUint16(f[9+i*3:], uint16(pairs[i]))
		binary.BigEndian.PutUint32(f[9+i*3+2:], pairs[i+1])
	}
	return f
}

// A SETTINGS frame that repeats a setting reaches Go as the frame an
// in-order reading ends with (RFC 9113 6.5.3; h2spec 6.5.3/1); the bytes
// around it are untouched.
func TestRepeatedSettingsRewritten(t *testing.T) {
	const win, push, frame, table = 4, 2, 5, 1
	for _, tc := range []struct {
		name      string
		sent, got []uint32
	}{
		{"repeat", []uint32{win, 100, win, 1}, []uint32{win, 1}},
		{"several", []uint32{table, 0, win, 5, push, 0, table, 4096, win, 7, 0x99, 3, 0x99, 4}, []uint32{table, 4096, win, 7, push, 0, 0x99, 4}},
		{"unique", []uint32{win, 5, push, 0}, []uint32{win, 5, push, 0}},
		{"invalid-ends-it", []uint32{win, 5, frame, 20000, push, 0, win, 1 << 31, frame, 1}, []uint32{frame, 20000, push, 0, win, 1 << 31}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient()
			c.buf.Write(settingsFrame(tc.sent...))
			c.request(1, true)
			c.buf.Write(settingsFrame(tc.sent...)) // again, mid-conversation
			client := c.bytes()
			want := append([]byte(http2.ClientPreface), settingsFrame(tc.got...)...)
			rest := client[len(http2.ClientPreface)+9+len(tc.sent)*3 : len(client)-9-len(tc.sent)*3]
			want = append(want, rest...)
			want = append(want, settingsFrame(tc.got...)...)
			forEachSplit(t, client, func(t *testing.T, got []byte, v *Violation, wrote []byte) {
				if v != nil || len(wrote) != 0 {
					t.Fatalf("violation %v, wrote %x", v, wrote)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("server read\n%x\nwant\n%x", got, want)
				}
			})
		})
	}
	t.Run("over-the-cap-passes", func(t *testing.T) {
		var pairs []uint32
		for i := range 101 {
			pairs = append(pairs, win, uint32(i))
		}
		c := newClient()
		c.buf.Write(settingsFrame(pairs...))
		wantPassThrough(t, c.bytes())
	})
}

// What the guard cannot judge it leaves to Go, unchanged: not HTTP/2, a
// broken HPACK block, a frame where a CONTINUATION belongs.
func TestStepsAsideOnWhatGoRejects(t *testing.T) {
	notH2 := []byte("GET / HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n")
	c := newClient().settings()
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EndStream: true, EndHeaders: true})
	c.request(3, true, "connection", "close")
	badHPACK := c.bytes()
	c = newClient().settings()
	block := c.encode(":method", "GET", ":path", "/")
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true})
	c.fr.WritePing(false, [8]byte{})
	c.request(3, true, "connection", "close")
	noContinuation := c.bytes()
	for name, b := range map[string][]byte{"not-h2": notH2, "bad-hpack": badHPACK, "no-continuation": noContinuation} {
		t.Run(name, func(t *testing.T) { wantPassThrough(t, b) })
	}
}

// The guard's GOAWAY never lands inside a frame of the server: mid-frame
// it only closes.
func TestGoAwayOnlyBetweenServerFrames(t *testing.T) {
	bad := newClient().settings().request(1, true, "connection", "close").bytes()
	var server bytes.Buffer
	fr := http2.NewFramer(&server, nil)
	fr.WriteData(1, false, make([]byte, 100))
	for _, cut := range []int{0, 5, 9, 50, 109} {
		sc := &scriptConn{pieces: [][]byte{bad}}
		g := New(sc)
		g.Write(server.Bytes()[:cut])
		readLikeFramer(g)
		sc.mu.Lock()
		wrote := sc.wrote.Bytes()[cut:]
		closed := sc.closed
		sc.mu.Unlock()
		if !closed {
			t.Fatalf("cut %d: connection not closed", cut)
		}
		if atBoundary := cut == 0 || cut == 109; atBoundary != (len(wrote) > 0) {
			t.Fatalf("cut %d: guard wrote %x", cut, wrote)
		}
	}
}
