package cgi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func parse(in string, nph bool) (*cgiResponse, string, error) {
	br := bufio.NewReaderSize(strings.NewReader(in), readerSize)
	resp, err := parseHeader(br, nph)
	rest, _ := io.ReadAll(br)
	return resp, string(rest), err
}

// RFC 3875 section 6: the header block of a script's response.
func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		nph    bool
		status int
		loc    string
		header http.Header
		rest   string
		err    string
	}{
		{name: "document", in: "Content-Type: text/html\n\n<p>", header: http.Header{"Content-Type": {"text/html"}}, rest: "<p>"},
		{name: "crlf", in: "Content-Type: text/html\r\nX-A:  b \t\r\n\r\nbody\r\n", header: http.Header{"Content-Type": {"text/html"}, "X-A": {"b"}}, rest: "body\r\n"},
		{name: "mixed endings", in: "Content-type:text/plain\r\nx-b: 1\n\r\n", header: http.Header{"Content-Type": {"text/plain"}, "X-B": {"1"}}},
		{name: "status", in: "Status: 404 Not Found\nContent-Type: text/plain\n\n", status: 404, header: http.Header{"Content-Type": {"text/plain"}}},
		{name: "status bare code", in: "Status: 201\n\n", status: 201, header: http.Header{}},
		{name: "local redirect", in: "Location: /x?y\n\n", loc: "/x?y", header: http.Header{"Location": {"/x?y"}}},
		{name: "repeated field", in: "Content-Type: a/b\nSet-Cookie: 1\nSet-Cookie: 2\n\n", header: http.Header{"Content-Type": {"a/b"}, "Set-Cookie": {"1", "2"}}},
		{name: "hop-by-hop", in: "Content-Type: a/b\nConnection: close\nTransfer-Encoding: chunked\nTE: x\nUpgrade: h2c\n\n", header: http.Header{"Content-Type": {"a/b"}}},
		{name: "content-length", in: "Content-Type: a/b\nContent-Length: 12\n\n", header: http.Header{"Content-Type": {"a/b"}, "Content-Length": {"12"}}},
		{name: "obs-text value", in: "Content-Type: a/b\nX-U: caf\xc3\xa9\n\n", header: http.Header{"Content-Type": {"a/b"}, "X-U": {"caf\xc3\xa9"}}},
		{name: "nph", in: "HTTP/1.1 202 Accepted\r\nContent-Type: a/b\r\nStatus: 500\r\n\r\nx", nph: true, status: 202, header: http.Header{"Content-Type": {"a/b"}}, rest: "x"},
		{name: "nph no fields", in: "HTTP/1.0 204 No Content\n\n", nph: true, status: 204, header: http.Header{}},

		{name: "empty", in: "", err: "ended before"},
		{name: "no blank line", in: "Content-Type: a/b\n", err: "ended before"},
		{name: "no newline", in: "Content-Type: a/b", err: "ended before"},
		{name: "empty block", in: "\nbody", err: "empty header block"},
		{name: "no colon", in: "hello world\n\n", err: "without a field name"},
		{name: "empty name", in: ": x\n\n", err: "without a field name"},
		{name: "space in name", in: "Content Type: a/b\n\n", err: "invalid field name"},
		{name: "space before colon", in: "Content-Type : a/b\n\n", err: "invalid field name"},
		{name: "continuation", in: "Content-Type: a/b\n c\n\n", err: "continuation"},
		{name: "control char", in: "Content-Type: a/b\nX: a\x00b\n\n", err: "control character"},
		{name: "bare cr", in: "Content-Type: a/b\nX: a\rb\n\n", err: "control character"},
		{name: "no cgi field", in: "X-A: b\n\n", err: "no Content-Type"},
		{name: "two statuses", in: "Status: 200\nStatus: 404\n\n", err: "repeated Status"},
		{name: "two types", in: "Content-Type: a/b\nContent-Type: c/d\n\n", err: "repeated Content-Type"},
		{name: "two locations", in: "Location: /a\nLocation: /b\n\n", err: "repeated Location"},
		{name: "empty location", in: "Location:\nContent-Type: a/b\n\n", err: "empty Location"},
		{name: "status letters", in: "Status: OK\n\n", err: "invalid Status"},
		{name: "status 4 digits", in: "Status: 2000\n\n", err: "invalid Status"},
		{name: "status 1xx", in: "Status: 101\n\n", err: "out of range"},
		{name: "status 600", in: "Status: 600\n\n", err: "out of range"},
		{name: "bad content-length", in: "Content-Type: a/b\nContent-Length: -1\n\n", err: "invalid Content-Length"},
		{name: "conflicting content-length", in: "Content-Type: a/b\nContent-Length: 1\nContent-Length: 2\n\n", err: "conflicting"},
		{name: "nph without status line", in: "Content-Type: a/b\n\n", nph: true, err: "status line"},
		{name: "nph bad status line", in: "HTTP/1.1 abc\n\n", nph: true, err: "invalid Status"},
		{name: "too long", in: "Content-Type: a/b\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\n", 70) + "\n", err: "longer than"},
		{name: "long line", in: "Content-Type: a/b\nX: " + strings.Repeat("p", readerSize) + "\n\n", err: "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, rest, err := parse(tc.in, tc.nph)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if resp.status != tc.status || resp.location != tc.loc || rest != tc.rest {
				t.Errorf("got status %d location %q rest %q, want %d %q %q", resp.status, resp.location, rest, tc.status, tc.loc, tc.rest)
			}
			if len(resp.header) != len(tc.header) {
				t.Errorf("header: got %v, want %v", resp.header, tc.header)
			}
			for k, v := range tc.header {
				if got := resp.header[k]; strings.Join(got, "|") != strings.Join(v, "|") {
					t.Errorf("header %s: got %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestIsLocalRedirect(t *testing.T) {
	for loc, want := range map[string]bool{
		"/":                  true,
		"/a/b?c":             true,
		"//evil.example/":    false,
		"/\\evil.example/":   false,
		"http://example/":    false,
		"relative":           false,
		"":                   false,
		"https://x.example/": false,
	} {
		if got := isLocalRedirect(loc); got != want {
			t.Errorf("isLocalRedirect(%q): got %v, want %v", loc, got, want)
		}
	}
}

// FuzzParseHeader checks the invariants of the response-header parser on
// any input: no panic, bounded reading, and a result that is safe to relay
// (a valid status, field names that are tokens, values without line
// breaks or NULs, no hop-by-hop fields). The corpus is in
// testdata/fuzz/FuzzParseHeader.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		"Content-Type: text/html\n\n<p>hi</p>",
		"Status: 302 Found\r\nLocation: http://x/\r\n\r\n",
		"Location: /local\n\n",
		"HTTP/1.1 200 OK\r\nX: y\r\n\r\n",
		"X: a\n b\n\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.0 404 Not Found\n\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, nph bool) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		resp, err := parseHeader(br, nph)
		if err != nil {
			var he *headerError
			if !errors.As(err, &he) && err != errIncomplete {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if resp.size > maxHeaderBytes || resp.size > len(data) {
			t.Fatalf("size %d for %d bytes of input", resp.size, len(data))
		}
		if rest := br.Buffered(); resp.size+rest > len(data) {
			t.Fatalf("consumed %d + buffered %d > input %d", resp.size, rest, len(data))
		}
		if resp.status != 0 && (resp.status < 200 || resp.status > 599) {
			t.Fatalf("status %d", resp.status)
		}
		if nph && resp.status == 0 {
			t.Fatalf("nph response without a status")
		}
		if !nph && resp.status == 0 && !resp.hasType && resp.location == "" {
			t.Fatalf("accepted a block with no CGI field")
		}
		for k, vs := range resp.header {
			if k == "" || !isToken(k) || hopByHop[k] || k == "Status" {
				t.Fatalf("bad field name %q", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("field %s has value %q", k, v)
				}
			}
		}
		if resp.location != "" && resp.header.Get("Location") != resp.location {
			t.Fatalf("location %q not relayed", resp.location)
		}
	})
}
