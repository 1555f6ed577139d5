package fastpath

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of relay.go, the API of a relaying handler (the reverse proxy).

// serveRelay serves h on a loopback listener (net/http, if given, takes
// what h declines) and returns a client connection to it.
func serveRelay(t *testing.T, h Handler, slow http.Handler) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := Listen(ln, h, Options{})
	if slow != nil {
		go http.Serve(fl, slow)
	}
	t.Cleanup(func() { fl.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestRelayAPI(t *testing.T) {
	var raws []string
	c := serveRelay(t, HandlerFunc(func(req *Request, w *ResponseWriter) bool {
		raws = append(raws, string(w.RawHeader()))
		if req.Path == "/decline" {
			return false
		}
		w.SetDefaultHeaders([][2]string{{"X-Site", "s"}})
		if len(w.DefaultHeaders()) != 1 {
			t.Error("DefaultHeaders")
		}
		w.Refresh()
		if err := w.WriteInterim(103, []byte("Link: </a>\r\n")); err != nil {
			t.Error(err)
		}
		w.WriteHeader(200)
		if w.WriteInterim(103, nil) == nil {
			t.Error("WriteInterim after WriteHeader")
		}
		w.AddHeader("Transfer-Encoding", "chunked")
		w.WriteChunk([]byte("ab"))
		w.Flush()
		w.WriteChunk(nil)
		w.WriteChunk([]byte(strings.Repeat("c", 20000)))
		w.EndChunks([]byte("X-T: 1\r\n"))
		return true
	}), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "net/http") }))
	// Two pipelined requests, then one handed off.
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\nX-Unknown: 1\r\nx-lower:  v \r\n\r\n"+
		"GET /b?q HTTP/1.1\r\nHost: y\r\n\r\n"+
		"GET /decline HTTP/1.1\r\nHost: z\r\nCookie: c\r\n\r\n")
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 103 || resp.Header.Get("Link") != "</a>" {
			t.Fatalf("interim: %d %v", resp.StatusCode, resp.Header)
		}
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "ab"+strings.Repeat("c", 20000) || resp.Trailer.Get("X-T") != "1" || resp.Header.Get("X-Site") != "s" {
			t.Fatalf("response %d: %v %d bytes %v %v", i, err, len(b), resp.Trailer, resp.Header)
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "net/http" {
		t.Errorf("hand-off: %q", b)
	}
	want := []string{"Host: x\r\nX-Unknown: 1\r\nx-lower:  v \r\n", "Host: y\r\n", "Host: z\r\nCookie: c\r\n"}
	if strings.Join(raws, "|") != strings.Join(want, "|") {
		t.Errorf("RawHeader: %q, want %q", raws, want)
	}
	if NewRecorder().Writer().RawHeader() != nil {
		t.Error("RawHeader of a Recorder")
	}
}

func TestRelayAbortCloses(t *testing.T) {
	c := serveRelay(t, HandlerFunc(func(req *Request, w *ResponseWriter) bool {
		w.WriteHeader(200)
		w.AddHeader("Content-Length", "10")
		w.Write([]byte("abc"))
		w.Abort()
		return true
	}), nil)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("connection not closed: %v", err)
	}
}

// Done reads the clock once per response: the handler that reports an
// upstream's time and the entry that logs the request get the same end,
// it is not before the request's arrival, and each request reads anew.
func TestDoneReadsTheClockOncePerResponse(t *testing.T) {
	type reading struct{ start, first, second, now time.Time }
	got := make(chan reading, 2)
	c := serveRelay(t, HandlerFunc(func(req *Request, w *ResponseWriter) bool {
		w.WriteHeader(204)
		first := w.Done()
		time.Sleep(2 * time.Millisecond)
		got <- reading{req.Start, first, w.Done(), w.Now()}
		return true
	}), nil)
	br := bufio.NewReader(c)
	var prev time.Time
	for i := range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		r := <-got
		if !r.first.Equal(r.second) || !r.now.Equal(r.first) {
			t.Errorf("request %d: Done gave %v then %v, Now %v: want one reading", i, r.first, r.second, r.now)
		}
		if r.first.Before(r.start) {
			t.Errorf("request %d: Done %v before the request's start %v", i, r.first, r.start)
		}
		if !r.first.After(prev) {
			t.Errorf("request %d: Done %v not after the previous response's %v", i, r.first, prev)
		}
		prev = r.first
		time.Sleep(2 * time.Millisecond)
	}
}
