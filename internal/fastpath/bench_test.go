package fastpath

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// replayConn feeds the same request n times, one per Read, and discards
// what is written.
type replayConn struct {
	req     []byte
	n       int
	written int64
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, io.EOF
	}
	c.n--
	return copy(p, c.req), nil
}
func (c *replayConn) Write(p []byte) (int, error)      { c.written += int64(len(p)); return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return benchAddr }
func (c *replayConn) RemoteAddr() net.Addr             { return benchAddr }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

var benchAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}

const benchRequest = "GET /1k HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n"

// BenchmarkFastPath1KiB runs the engine on one connection that sends b.N
// keep-alive requests for a 1 KiB body from memory.
func BenchmarkFastPath1KiB(b *testing.B) {
	h := &memHandler{files: map[string][]byte{"/1k": []byte(strings.Repeat("x", 1024))},
		defaults: [][2]string{{"X-Frame-Options", "DENY"}}}
	l := newListener(nil, h, Options{ReadHeaderTimeout: time.Second, IdleTimeout: time.Minute})
	rc := &replayConn{req: []byte(benchRequest), n: b.N}
	c := &conn{l: l, link: &link{nc: rc, heapAt: -1}, src: sourceReader{nc: rc, fd: -1}}
	l.conns[c.link] = struct{}{}
	l.wg.Add(1)
	b.ReportAllocs()
	b.ResetTimer()
	c.serve()
	b.StopTimer()
	if h.served.Load() != int64(b.N) {
		b.Fatalf("served %d, want %d", h.served.Load(), b.N)
	}
}

// BenchmarkNetHTTP1KiB is the same through net/http, for comparison.
func BenchmarkNetHTTP1KiB(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	hv := []string{"text/plain; charset=utf-8"}
	lv := []string{strconv.Itoa(len(body))}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = hv
		w.Header()["Content-Length"] = lv
		w.Write(body)
	}), ReadHeaderTimeout: time.Second, IdleTimeout: time.Minute}
	rc := &replayConn{req: []byte(benchRequest), n: b.N}
	ln := &oneConnListener{c: rc, done: make(chan struct{})}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			close(ln.done)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	go srv.Serve(ln)
	<-ln.done
	b.StopTimer()
	srv.Close()
}

type oneConnListener struct {
	c    net.Conn
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if c := l.c; c != nil {
		l.c = nil
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return benchAddr }

func BenchmarkParseRequest(b *testing.B) {
	in := []byte(benchRequest)
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		req.reset()
		parseRequest(in, &req)
	}
}
