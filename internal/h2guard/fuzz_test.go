package h2guard

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
)

// verdict is what a run decides, independent of how bytes were cut.
type verdict struct {
	rule               string
	code               http2.ErrCode
	stream, lastStream uint32
}

func verdictOf(v *Violation) verdict {
	if v == nil {
		return verdict{}
	}
	return verdict{v.Rule, v.Code, v.Stream, v.LastStream}
}

// FuzzGuard feeds arbitrary client bytes after the preface. The guard
// must not panic, must reach the same verdict however the bytes are cut
// and read, and without a violation must give the server the same bytes
// every way (and the client's own bytes when nothing was rewritten).
func FuzzGuard(f *testing.F) {
	seeds := [][]byte{
		newClient().settings().request(1, true, "accept", "*/*").request(3, true, "accept", "*/*").bytes(),
		newClient().settings().request(1, true, "connection", "close").bytes(),
		newClient().settings().post(1, "1").data(1, true, "test").bytes(),
		newClient().settings().post(1, "4").data(1, false, "te").data(1, true, "st").bytes(),
		append([]byte(http2.ClientPreface), settingsFrame(4, 100, 4, 1)...),
	}
	c := newClient().settings()
	block := c.encode(":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/", "te", "gzip")
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:4], PadLength: 3, Priority: http2.PriorityParam{Weight: 9}})
	c.fr.WriteContinuation(1, true, block[4:])
	seeds = append(seeds, c.bytes())
	for i, s := range seeds {
		f.Add(s[len(http2.ClientPreface):], uint8(i*3+1))
	}
	f.Fuzz(func(t *testing.T, frames []byte, cut uint8) {
		client := append([]byte(http2.ClientPreface), frames...)
		piece := int(cut%17) + 1
		whole, v0, _ := run(client, 0, 0)
		for _, s := range []struct{ piece, read int }{{1, 1}, {piece, 0}, {piece, int(cut%23) + 1}, {0, 1 << 16}} {
			got, v, _ := run(client, s.piece, s.read)
			if verdictOf(v) != verdictOf(v0) {
				t.Fatalf("piece %d read %d: verdict %+v, whole: %+v", s.piece, s.read, verdictOf(v), verdictOf(v0))
			}
			if v == nil && !bytes.Equal(got, whole) {
				t.Fatalf("piece %d read %d: server read other bytes than whole reads give", s.piece, s.read)
			}
		}
		if v0 == nil && len(whole) > len(client) {
			t.Fatal("the guard grew the stream")
		}
	})
}
