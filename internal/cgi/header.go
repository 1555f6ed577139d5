package cgi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
)

// maxHeaderBytes bounds the header block a script may write (RFC 3875
// section 6.2: the response header). A script that writes more before the
// blank line is answered with 502: it is broken or not a CGI program.
const maxHeaderBytes = 64 << 10

// readerSize is the size of the buffered reader on a script's stdout; it
// also bounds one header line.
const readerSize = 32 << 10

// errIncomplete is returned when the script closed stdout before the blank
// line that ends its header block (this includes "no output at all").
var errIncomplete = errors.New("script output ended before the end of the header block")

// headerError is a malformed header block; the message is for the error
// log, never for the client.
type headerError struct{ msg string }

func (e *headerError) Error() string { return "malformed CGI response header: " + e.msg }

func malformed(format string, args ...any) error {
	return &headerError{msg: fmt.Sprintf(format, args...)}
}

// cgiResponse is the parsed header block of a script's response.
type cgiResponse struct {
	// status is the code of a Status field (or of the status line of an
	// NPH script), 0 when none was given.
	status int
	// location is the value of the Location field, "" when absent.
	location string
	// hasType tells whether a Content-Type field was given.
	hasType bool
	// header holds every field to relay to the client, in canonical form,
	// hop-by-hop fields and the Status field removed.
	header http.Header
	// size is the number of bytes the header block took.
	size int
}

// hopByHop are the fields that concern one connection only (RFC 9110
// section 7.6.1). A script cannot set them for portico's connection.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// parseHeader reads the header block of a CGI response (RFC 3875 section
// 6) from br: lines ended by LF or CRLF, up to an empty line. With nph the
// first line is an HTTP status line ("HTTP/1.1 200 OK"), as non-parsed
// header scripts write it. It reads at most maxHeaderBytes and never more
// than the header block, so the body is what is left in br.
//
// It rejects, rather than guesses at: continuation lines, fields without a
// colon or with an invalid name, control characters in values, repeated
// Status / Content-Type / Location fields, an invalid Status or
// Content-Length, and a block with none of Status, Content-Type and
// Location (RFC 3875 section 6.2 requires one of them).
func parseHeader(br *bufio.Reader, nph bool) (*cgiResponse, error) {
	resp := &cgiResponse{header: make(http.Header, 4)}
	first := true
	for {
		line, err := br.ReadSlice('\n')
		resp.size += len(line)
		if resp.size > maxHeaderBytes {
			return nil, malformed("header block longer than %d bytes", maxHeaderBytes)
		}
		if err == bufio.ErrBufferFull {
			return nil, malformed("header line longer than %d bytes", br.Size())
		}
		if err != nil {
			if err == io.EOF {
				return nil, errIncomplete
			}
			return nil, err
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if first && nph {
			first = false
			code, err := parseStatusLine(line)
			if err != nil {
				return nil, err
			}
			resp.status = code
			continue
		}
		if len(line) == 0 {
			if first {
				return nil, malformed("empty header block")
			}
			break
		}
		first = false
		if err := resp.addField(line, nph); err != nil {
			return nil, err
		}
	}
	if !nph && resp.status == 0 && !resp.hasType && resp.location == "" {
		return nil, malformed("no Content-Type, Location or Status field")
	}
	return resp, nil
}

func (resp *cgiResponse) addField(line []byte, nph bool) error {
	if line[0] == ' ' || line[0] == '\t' {
		return malformed("continuation line %q", clip(line))
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return malformed("line without a field name and colon: %q", clip(line))
	}
	name := line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return malformed("invalid field name %q", clip(name))
		}
	}
	value := trimOWS(line[colon+1:])
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return malformed("control character in field %q", clip(name))
		}
	}
	key := textproto.CanonicalMIMEHeaderKey(string(name))
	switch key {
	case "Status":
		if nph {
			return nil // the status line already said it
		}
		if resp.status != 0 {
			return malformed("repeated Status field")
		}
		code, err := parseStatusCode(value)
		if err != nil {
			return err
		}
		resp.status = code
		return nil
	case "Content-Type":
		if resp.hasType {
			return malformed("repeated Content-Type field")
		}
		resp.hasType = true
	case "Location":
		if resp.location != "" {
			return malformed("repeated Location field")
		}
		if len(value) == 0 {
			return malformed("empty Location field")
		}
		resp.location = string(value)
	case "Content-Length":
		if len(value) == 0 || len(value) > 18 {
			return malformed("invalid Content-Length %q", clip(value))
		}
		for _, c := range value {
			if c < '0' || c > '9' {
				return malformed("invalid Content-Length %q", clip(value))
			}
		}
		if old := resp.header.Get(key); old != "" {
			if old != string(value) {
				return malformed("conflicting Content-Length fields")
			}
			return nil
		}
	}
	if hopByHop[key] {
		return nil
	}
	resp.header[key] = append(resp.header[key], string(value))
	return nil
}

// parseStatusCode parses the value of a Status field: "NNN" or
// "NNN reason-phrase". Codes outside 200-599 are refused: 1xx are not final
// answers and anything else is not HTTP.
func parseStatusCode(v []byte) (int, error) {
	if len(v) < 3 || (len(v) > 3 && v[3] != ' ' && v[3] != '\t') {
		return 0, malformed("invalid Status %q", clip(v))
	}
	code := 0
	for _, c := range v[:3] {
		if c < '0' || c > '9' {
			return 0, malformed("invalid Status %q", clip(v))
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 {
		return 0, malformed("Status %d out of range 200-599", code)
	}
	return code, nil
}

// parseStatusLine parses the first line of an NPH script's output:
// "HTTP/1.1 200 OK" (any HTTP/x.y version; the client gets its own).
func parseStatusLine(line []byte) (int, error) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/"))
	if !ok {
		return 0, malformed("NPH output does not start with an HTTP status line: %q", clip(line))
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp < 1 {
		return 0, malformed("invalid NPH status line %q", clip(line))
	}
	for _, c := range rest[:sp] {
		if (c < '0' || c > '9') && c != '.' {
			return 0, malformed("invalid NPH status line %q", clip(line))
		}
	}
	return parseStatusCode(rest[sp+1:])
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isTokenChar reports whether c may appear in a field name (RFC 9110
// section 5.6.2 tchar).
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// clip shortens a byte string for a log message.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// isLocalRedirect reports whether a Location value is a local URI path
// (RFC 3875 section 6.2.2): "/" followed by anything but a second "/"
// ("//host/x" is a network-path reference to another host).
func isLocalRedirect(loc string) bool {
	return len(loc) > 0 && loc[0] == '/' && (len(loc) == 1 || (loc[1] != '/' && loc[1] != '\\'))
}
