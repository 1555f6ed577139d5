package static

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"portico/internal/fastpath"
)

// benchEngine runs requests for path, one after the other on one
// keep-alive loopback connection, through the fast path in front of
// net/http (whatever the fast path declines, net/http answers): the whole
// engine, sockets included, as a client like wrk sees it. The client
// reads with a fixed buffer and allocates nothing.
func benchEngine(b *testing.B, path string, wantStatus int) {
	h, _ := newHandler(b, nil, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	fl := fastpath.Listen(ln, h, fastpath.Options{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(fl)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		fl.Shutdown(ctx)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n")
	buf := make([]byte, 8192)
	exchange := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n, want := 0, -1
		for want < 0 || n < want {
			k, err := c.Read(buf[n:])
			if err != nil {
				b.Fatalf("read: %v (got %q)", err, buf[:n])
			}
			n += k
			if want < 0 {
				want = responseLength(buf[:n])
			}
		}
		if want != n || !bytes.HasPrefix(buf[9:], []byte(strconv.Itoa(wantStatus))) {
			b.Fatalf("got %q, want one %d response", buf[:n], wantStatus)
		}
	}
	exchange()
	b.ReportAllocs()
	for b.Loop() {
		exchange()
	}
}

// responseLength returns the length of the response that starts p, once
// its header is complete (-1 before): header plus Content-Length.
func responseLength(p []byte) int {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return -1
	}
	const key = "\r\nContent-Length: "
	i := bytes.Index(p[:end], []byte(key))
	if i < 0 {
		return end + 4
	}
	j := i + len(key)
	k := j
	for k < end && p[k] >= '0' && p[k] <= '9' {
		k++
	}
	n, _ := strconv.Atoi(string(p[j:k]))
	return end + 4 + n
}

// BenchmarkEngine404 is a 404 for a missing file over a keep-alive
// connection, the engine whole (fast path, or net/http where it declines).
func BenchmarkEngine404(b *testing.B) { benchEngine(b, "/missing.txt", 404) }

// BenchmarkEngine1KiB is a hit of a 1 KiB file, for comparison.
func BenchmarkEngine1KiB(b *testing.B) { benchEngine(b, "/1k.txt", 200) }
