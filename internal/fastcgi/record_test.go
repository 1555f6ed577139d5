package fastcgi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"portico/internal/cgi"
)

func TestParamsRoundTrip(t *testing.T) {
	long := strings.Repeat("v", 70000)
	pairs := [][2]string{{"A", ""}, {"N127", strings.Repeat("x", 127)}, {"N128", strings.Repeat("y", 128)}, {strings.Repeat("K", 200), long}}
	var b []byte
	for _, p := range pairs {
		b = appendParam(b, p[0], p[1])
	}
	got, err := decodeParams(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if got[p[0]] != p[1] {
			t.Errorf("param %.10q: got %d bytes, want %d", p[0], len(got[p[0]]), len(p[1]))
		}
	}
	// As a record stream: split at 65535 bytes, padded, then empty.
	stream := appendStream(nil, typeParams, b)
	var content []byte
	br := bufio.NewReader(bytes.NewReader(stream))
	for {
		h, err := readHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		if h.Type != typeParams || h.ID != requestID || (int(h.ContentLength)+int(h.PaddingLength))%8 != 0 {
			t.Fatalf("bad record header %+v", h)
		}
		c := make([]byte, int(h.ContentLength)+int(h.PaddingLength))
		if _, err := io.ReadFull(br, c); err != nil {
			t.Fatal(err)
		}
		if h.ContentLength == 0 {
			break
		}
		content = append(content, c[:h.ContentLength]...)
	}
	if !bytes.Equal(content, b) {
		t.Errorf("stream content differs from the params")
	}
}

// stderrFunc adapts a function to the responseReader's stderr sink.
type stderrFunc func([]byte)

func (f stderrFunc) log(b []byte) { f(b) }

// stream builds a responder's byte stream from records.
func stream(recs ...[]byte) []byte { return bytes.Join(recs, nil) }

func rec(typ uint8, id uint16, content string, pad int) []byte {
	b := make([]byte, headerLen, headerLen+len(content)+pad)
	putHeader(b, typ, id, len(content), pad)
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

func endReq(status uint8) []byte {
	return rec(typeEndRequest, 1, string([]byte{0, 0, 0, 7, status, 0, 0, 0}), 0)
}

func TestResponseReader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		stdout  string
		stderr  string
		wantErr error // nil: a clean end
	}{
		{"simple", stream(rec(typeStdout, 1, "hello ", 2), rec(typeStdout, 1, "world", 0), rec(typeStdout, 1, "", 0), endReq(0)), "hello world", "", nil},
		{"stderr interleaved", stream(rec(typeStderr, 1, "warn", 4), rec(typeStdout, 1, "a", 7), rec(typeStderr, 1, "", 0), endReq(0)), "a", "warn", nil},
		{"no end", stream(rec(typeStdout, 1, "a", 0)), "a", "", io.ErrUnexpectedEOF},
		{"cut in content", rec(typeStdout, 1, "abcdef", 0)[:headerLen+3], "abc", "", io.ErrUnexpectedEOF},
		{"cut in header", rec(typeStdout, 1, "abcdef", 0)[:5], "", "", io.ErrUnexpectedEOF},
		{"other request", stream(rec(typeStdout, 2, "a", 0), endReq(0)), "", "", errProtocol},
		{"bad version", append([]byte{2}, rec(typeStdout, 1, "a", 0)[1:]...), "", "", errProtocol},
		{"unknown type", stream(rec(typeGetValuesResult, 1, "", 0)), "", "", errProtocol},
		{"short end", stream(rec(typeEndRequest, 1, "abc", 0)), "", "", errProtocol},
	}
	for _, tc := range tests {
		var stderr strings.Builder
		rr := &responseReader{br: bufio.NewReader(bytes.NewReader(tc.in)), stderr: stderrFunc(func(b []byte) { stderr.Write(b) })}
		var out []byte
		buf := make([]byte, 3)
		var err error
		for {
			var n int
			n, err = rr.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		if string(out) != tc.stdout || stderr.String() != tc.stderr {
			t.Errorf("%s: stdout %q stderr %q, want %q %q", tc.name, out, stderr.String(), tc.stdout, tc.stderr)
		}
		switch {
		case tc.wantErr == nil && (err != io.EOF || !rr.ended || rr.appStatus != 7):
			t.Errorf("%s: err %v ended %v app %d, want a clean end", tc.name, err, rr.ended, rr.appStatus)
		case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
	}
}

// FuzzResponse feeds arbitrary responder streams through the record
// reader and the CGI header parser: never a panic, never more stdout than
// the stream held, and a clean end only after FCGI_END_REQUEST.
func FuzzResponse(f *testing.F) {
	f.Add(stream(rec(typeStdout, 1, "Content-Type: text/plain\r\n\r\nhi", 0), rec(typeStdout, 1, "", 0), endReq(0)))
	f.Add(stream(rec(typeStdout, 1, "Status: 404\r\n", 3), rec(typeStderr, 1, "Primary script unknown", 2), rec(typeStdout, 1, "\r\nx", 5), endReq(0)))
	f.Add(stream(rec(typeStdout, 1, "Location: /x\n\n", 0), endReq(2)))
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := &responseReader{br: bufio.NewReaderSize(bytes.NewReader(in), 16), stderr: stderrFunc(func([]byte) {})}
		hr := bufio.NewReaderSize(rr, 64)
		resp, err := cgi.ParseResponseHeader(hr)
		if err == nil && resp.Status != 0 && (resp.Status < 200 || resp.Status > 599) {
			t.Fatalf("status %d", resp.Status)
		}
		n, err := io.Copy(io.Discard, hr)
		if n > int64(len(in)) {
			t.Fatalf("%d bytes of stdout from %d bytes of stream", n, len(in))
		}
		if err == nil && !rr.ended {
			t.Fatalf("clean end without FCGI_END_REQUEST")
		}
	})
}
