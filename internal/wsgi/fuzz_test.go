package wsgi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// FuzzForwardHeaders checks the header rules that stop httpoxy, header
// aliasing and private-header spoofing, for any header names: nothing
// that reaches the adapter maps to HTTP_PROXY, has a byte that could alias
// another name, is private, or is hop-by-hop; and no two forwarded names
// map to the same HTTP_* variable.
func FuzzForwardHeaders(f *testing.F) {
	for _, s := range []string{"Proxy", "X_Foo", "x-portico-scheme", "X-Foo", "Connection", "proxy", "X.Y", "X-Portico-", "Content-Length", "Te"} {
		f.Add(s, "X-Foo")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		in := http.Header{a: {"1"}, b: {"2"}, "Connection": {b}}
		out := forwardHeaders(in)
		seen := map[string]string{}
		for k := range out {
			env := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
			if prev, ok := seen[env]; ok {
				t.Fatalf("%q and %q both map to %s", prev, k, env)
			}
			seen[env] = k
			switch {
			case env == "HTTP_PROXY":
				t.Fatalf("%q would become HTTP_PROXY", k)
			case !envSafeName(k):
				t.Fatalf("%q forwarded: not letters, digits and '-'", k)
			case strings.HasPrefix(strings.ToLower(k), "x-portico-"):
				t.Fatalf("private header %q forwarded", k)
			case responseHopByHop(http.CanonicalHeaderKey(k)), strings.EqualFold(k, b):
				t.Fatalf("hop-by-hop header %q forwarded", k)
			}
		}
	})
}

// FuzzDecodeFrame checks the parser of the adapter's framed log lines (a
// traceback as one record): any worker output is either an ordinary line
// or a frame whose text is the JSON string it carried, and nothing
// panics.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		frameMark + `traceback "Traceback (most recent call last):\n  File \"x.py\"\nValueError: x\n"`,
		frameMark + `errors "two\nlines\n"`,
		frameMark + `traceback`,
		frameMark + ` "no kind"`,
		frameMark + `errors "unterminated`,
		frameMark + `errors 42`,
		"an ordinary line",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		kind, text, ok := decodeFrame(line)
		if !ok {
			if kind != "" || text != "" {
				t.Fatalf("not a frame, yet kind %q text %q", kind, text)
			}
			return
		}
		if !strings.HasPrefix(string(line), frameMark+kind+" ") || kind == "" {
			t.Fatalf("kind %q does not follow the mark in %q", kind, line)
		}
		if strings.HasSuffix(text, "\n") {
			t.Fatalf("text %q keeps its trailing newline", text)
		}
	})
}

// workerStream frames a response as the adapter writes it, for id.
func workerStream(id uint64, head string, body ...string) []byte {
	var b []byte
	frame := func(kind byte, payload []byte) {
		b = append(b, kind)
		b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
		b = append(b, payload...)
	}
	frame(frameHead, append(binary.BigEndian.AppendUint64(nil, id), head...))
	for _, s := range body {
		frame(frameData, []byte(s))
	}
	frame(frameEnd, append(binary.BigEndian.AppendUint64(nil, id), endSettled))
	return b
}

// FuzzWorkerResponse checks the reader of a worker's response frames on
// any stream: nothing panics, and a response is only ever accepted when
// it begins with a head (or app error) frame that carries the request's
// id, so bytes a worker left behind are never taken as an answer.
func FuzzWorkerResponse(f *testing.F) {
	const id = 0x0102030405060708
	f.Add(workerStream(id, "200 OK\r\nContent-Type: text/plain", "hello"))
	f.Add(workerStream(id, "204 No Content"))
	f.Add(workerStream(id+1, "200 OK", "STRAY"))
	f.Add(workerStream(id, "200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2", "x", "y"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY"))
	f.Add(workerStream(id, "999"))
	f.Add(workerStream(id, "20x OK"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		local, remote := net.Pipe()
		defer remote.Close()
		pr := &proc{done: make(chan struct{})}
		wc := &workerConn{c: local, br: bufio.NewReader(bytes.NewReader(stream))}
		pr.conn = wc
		ex := &exchange{pr: pr, wc: wc, id: id, length: -1}
		if err := ex.readHead(); err != nil {
			return
		}
		if len(stream) < 13 || stream[0] != frameHead && stream[0] != frameAppError ||
			binary.BigEndian.Uint64(stream[5:13]) != id {
			t.Fatalf("accepted a response without the request's id: %q", stream)
		}
		if !ex.appError && (ex.status < 100 || ex.status > 999) {
			t.Fatalf("status %d accepted", ex.status)
		}
		body, err := io.ReadAll(io.LimitReader(ex, 1<<20))
		if err != nil {
			if pr.conn != nil {
				t.Fatalf("read error %v, yet the connection is kept", err)
			}
			return
		}
		if len(body) > len(stream) {
			t.Fatalf("body of %d bytes from a stream of %d", len(body), len(stream))
		}
		if err := ex.settle(); err != nil && pr.conn != nil {
			t.Fatalf("settle error %v, yet the connection is kept", err)
		}
	})
}
