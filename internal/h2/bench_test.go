package h2

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkRequests1KiB is the engine's cost per request as h2load puts
// it (bench/tls-bench.sh, without TLS): batches of ten GETs for a 1 KiB
// answer on one connection, the next batch once all ten are answered.
// One op is one request; allocs/op is what a request costs the heap.
func BenchmarkRequests1KiB(b *testing.B) {
	body := strings.Repeat("x", 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", "1024")
		w.Write([]byte(body))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	srv := &Server{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv.ServeConn(c, h, context.Background())
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { c.Close(); <-done }()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/1k.html"}, {"user-agent", "bench"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	headers := block.Bytes()
	const batch = 10
	var out bytes.Buffer
	wfr := http2.NewFramer(&out, nil)
	stream := uint32(1)
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += batch {
		out.Reset()
		for i := 0; i < batch; i++ {
			wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: headers, EndStream: true, EndHeaders: true})
			stream += 2
		}
		if _, err := c.Write(out.Bytes()); err != nil {
			b.Fatal(err)
		}
		for ended := 0; ended < batch; {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
				ended++
			}
		}
	}
}
