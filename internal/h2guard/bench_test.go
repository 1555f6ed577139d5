package h2guard

import (
	"fmt"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
)

// sliceConn serves one byte slice to reads, without allocating.
type sliceConn struct {
	net.Conn // nil: only Read and Write are called
	b        []byte
	off      int
}

func (c *sliceConn) Read(p []byte) (int, error) {
	if c.off == len(c.b) {
		return 0, io.EOF
	}
	n := copy(p, c.b[c.off:])
	c.off += n
	return n, nil
}

// browserConversation is what a browser sends on a page load: the
// preface, its SETTINGS and connection WINDOW_UPDATE, then requests with
// a typical header block (a new :path each, or the same one, as h2load
// sends), with a WINDOW_UPDATE after every tenth.
func browserConversation(requests int, samePath bool) []byte {
	c := newClient().settings(
		http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 6291456},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: 262144})
	c.fr.WriteWindowUpdate(0, 15663105)
	for i := range requests {
		path := fmt.Sprintf("/assets/chunk-%d.4f9a2c.js", i)
		if samePath {
			path = "/index.html"
		}
		stream := uint32(2*i + 1)
		block := c.encode(
			":method", "GET", ":authority", "www.example.com", ":scheme", "https", ":path", path,
			"sec-ch-ua", `"Chromium";v="131", "Not_A Brand";v="24"`,
			"sec-ch-ua-mobile", "?0",
			"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			"sec-ch-ua-platform", `"Linux"`,
			"accept", "*/*",
			"sec-fetch-site", "same-origin", "sec-fetch-mode", "no-cors", "sec-fetch-dest", "script",
			"referer", "https://www.example.com/",
			"accept-encoding", "gzip, deflate, br, zstd",
			"accept-language", "en-US,en;q=0.9",
			"cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
			"priority", "u=1",
		)
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block, EndStream: true, EndHeaders: true})
		if i%10 == 9 {
			c.fr.WriteWindowUpdate(0, 1<<20)
		}
	}
	return c.bytes()
}

// readFrames reads r as Go's HTTP/2 server does (preface, then each
// frame header and its payload) into fixed buffers.
func readFrames(b *testing.B, r io.Reader, buf []byte) {
	if _, err := io.ReadFull(r, buf[:len(http2.ClientPreface)]); err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := io.ReadFull(r, buf[:9]); err != nil {
			if err == io.EOF {
				return
			}
			b.Fatal(err)
		}
		n := int(buf[0])<<16 | int(buf[1])<<8 | int(buf[2])
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuard measures the guard on a connection of 100 browser
// requests: ns/request is what the guard adds to each request's frames
// (the plain reads are measured alone as "unguarded"), allocs/op are per
// connection (New alone shows the part that is per connection).
func BenchmarkGuard(b *testing.B) {
	const requests = 100
	for _, same := range []bool{false, true} {
		conv := browserConversation(requests, same)
		name := "new-paths"
		if same {
			name = "same-path"
		}
		buf := make([]byte, 16<<10)
		b.Run(name+"/unguarded", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				readFrames(b, &sliceConn{b: conv}, buf)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*requests), "ns/request")
		})
		b.Run(name+"/guarded", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g := New(&sliceConn{b: conv})
				readFrames(b, g, buf)
				if g.Violation() != nil || g.in.bypass {
					b.Fatal("the conversation did not pass the guard")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*requests), "ns/request")
		})
	}
	b.Run("new-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			New(&sliceConn{})
		}
	})
}
