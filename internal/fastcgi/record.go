package fastcgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The record layer of the FastCGI protocol (FastCGI Specification 1.0,
// section 3 and appendix A), the responder role only: portico is the web
// server; php-fpm is the application.

const (
	version1 = 1

	typeBeginRequest    = 1
	typeAbortRequest    = 2
	typeEndRequest      = 3
	typeParams          = 4
	typeStdin           = 5
	typeStdout          = 6
	typeStderr          = 7
	typeData            = 8
	typeGetValues       = 9
	typeGetValuesResult = 10
	typeUnknownType     = 11

	roleResponder = 1
	flagKeepConn  = 1

	// Protocol status of an FCGI_END_REQUEST body.
	statusRequestComplete = 0
	statusCantMpxConn     = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3

	headerLen = 8
	// maxContent is the largest content of one record.
	maxContent = 65535

	// requestID is the id of every request: portico sends one request at a
	// time on a connection (php-fpm does not multiplex), so 1 is enough,
	// and a record with another id is a protocol error.
	requestID = 1
)

// header is a record header (section 3.3).
type header struct {
	Type          uint8
	ID            uint16
	ContentLength uint16
	PaddingLength uint8
}

// putHeader writes a record header into b[:8].
func putHeader(b []byte, typ uint8, id uint16, contentLen, paddingLen int) {
	b[0] = version1
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:], id)
	binary.BigEndian.PutUint16(b[4:], uint16(contentLen))
	b[6] = uint8(paddingLen)
	b[7] = 0
}

// errProtocol marks a stream that breaks the FastCGI protocol: the
// connection cannot be trusted any more.
var errProtocol = errors.New("fastcgi protocol error")

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// readHeader reads and checks one record header.
func readHeader(br *bufio.Reader) (header, error) {
	b, err := br.Peek(headerLen)
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return header{}, err
	}
	h := header{
		Type:          b[1],
		ID:            binary.BigEndian.Uint16(b[2:]),
		ContentLength: binary.BigEndian.Uint16(b[4:]),
		PaddingLength: b[6],
	}
	if b[0] != version1 {
		return header{}, protocolError("record version %d", b[0])
	}
	_, _ = br.Discard(headerLen)
	return h, nil
}

// appendParam appends one name-value pair (section 3.4): each length in
// one byte below 128, else in four bytes with the high bit set.
func appendParam(b []byte, name, value string) []byte {
	b = appendParamLen(b, len(name))
	b = appendParamLen(b, len(value))
	b = append(b, name...)
	return append(b, value...)
}

// appendParam2 and appendParam3 append a pair whose value is the
// concatenation of its parts, without building it first.
func appendParam2(b []byte, name, v1, v2 string) []byte {
	b = appendParamLen(b, len(name))
	b = appendParamLen(b, len(v1)+len(v2))
	b = append(b, name...)
	b = append(b, v1...)
	return append(b, v2...)
}

func appendParam3(b []byte, name, v1, v2, v3 string) []byte {
	b = appendParamLen(b, len(name))
	b = appendParamLen(b, len(v1)+len(v2)+len(v3))
	b = append(b, name...)
	b = append(b, v1...)
	b = append(b, v2...)
	return append(b, v3...)
}

// appendParamBytes is appendParam with the value in bytes.
func appendParamBytes(b []byte, name string, value []byte) []byte {
	b = appendParamLen(b, len(name))
	b = appendParamLen(b, len(value))
	b = append(b, name...)
	return append(b, value...)
}

func appendParamLen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
}

// appendStream appends data as records of type typ, each at most
// maxContent bytes, then the empty record that ends the stream.
func appendStream(b []byte, typ uint8, data []byte) []byte {
	for len(data) > 0 {
		n := min(len(data), maxContent)
		b = appendRecord(b, typ, data[:n])
		data = data[n:]
	}
	return appendRecord(b, typ, nil)
}

// appendRecord appends one record, padded to a multiple of 8 bytes as the
// specification recommends.
func appendRecord(b []byte, typ uint8, content []byte) []byte {
	pad := -len(content) & 7
	var h [headerLen]byte
	putHeader(h[:], typ, requestID, len(content), pad)
	b = append(b, h[:]...)
	b = append(b, content...)
	var zeros [8]byte
	return append(b, zeros[:pad]...)
}

// appendBeginRequest appends FCGI_BEGIN_REQUEST for the responder role,
// asking the application to keep the connection open after the request.
func appendBeginRequest(b []byte) []byte {
	body := [8]byte{0, roleResponder, flagKeepConn}
	return appendRecord(b, typeBeginRequest, body[:])
}

// responseReader reads the application's records for one request: the
// FCGI_STDOUT stream is what Read returns, FCGI_STDERR content goes to
// stderr, and FCGI_END_REQUEST ends the stream (io.EOF). Anything else,
// or a record for another request, is a protocol error.
type responseReader struct {
	br     *bufio.Reader
	stderr interface{ log([]byte) }
	// left is the stdout content not yet read of the current record,
	// pad its padding.
	left, pad int
	// got is set once a record header was read: the responder answered.
	got bool
	// ended is set once FCGI_END_REQUEST was read; appStatus and
	// protoStatus are its body.
	ended       bool
	appStatus   uint32
	protoStatus uint8
	err         error
	// scratch holds one stderr record's content.
	scratch []byte
}

// Read returns FCGI_STDOUT content. It returns io.EOF after
// FCGI_END_REQUEST, and a protocol error for a malformed stream.
func (rr *responseReader) Read(p []byte) (int, error) {
	for rr.left == 0 {
		if rr.err != nil {
			return 0, rr.err
		}
		if rr.pad > 0 {
			if _, err := rr.br.Discard(rr.pad); err != nil {
				rr.err = unexpected(err)
				return 0, rr.err
			}
			rr.pad = 0
		}
		rr.err = rr.next()
	}
	if len(p) > rr.left {
		p = p[:rr.left]
	}
	n, err := rr.br.Read(p)
	rr.left -= n
	if err != nil && rr.left > 0 {
		rr.err = unexpected(err)
		return n, rr.err
	}
	return n, nil
}

// ready reports whether more of the response has arrived: the rest of
// the current stdout record, or the header of the next record past the
// current one's padding. Reading on would not wait for the responder.
func (rr *responseReader) ready() bool {
	if rr.err != nil {
		return true
	}
	if rr.left > 0 {
		return rr.br.Buffered() > 0
	}
	return rr.br.Buffered() >= rr.pad+headerLen
}

// next reads record headers until one with stdout content; it returns
// io.EOF at FCGI_END_REQUEST.
func (rr *responseReader) next() error {
	for {
		h, err := readHeader(rr.br)
		if err != nil {
			return unexpected(err)
		}
		rr.got = true
		if h.ID != requestID {
			return protocolError("record of type %d for request %d", h.Type, h.ID)
		}
		n, pad := int(h.ContentLength), int(h.PaddingLength)
		switch h.Type {
		case typeStdout:
			if n == 0 {
				// The end of the stdout stream: only END_REQUEST may
				// follow, but an empty record is harmless either way.
				if _, err := rr.br.Discard(pad); err != nil {
					return unexpected(err)
				}
				continue
			}
			rr.left, rr.pad = n, pad
			return nil
		case typeStderr:
			if cap(rr.scratch) < n {
				rr.scratch = make([]byte, n)
			}
			b := rr.scratch[:n]
			if _, err := io.ReadFull(rr.br, b); err != nil {
				return unexpected(err)
			}
			if _, err := rr.br.Discard(pad); err != nil {
				return unexpected(err)
			}
			if n > 0 && rr.stderr != nil {
				rr.stderr.log(b)
			}
		case typeEndRequest:
			if n != 8 {
				return protocolError("FCGI_END_REQUEST of %d bytes", n)
			}
			b, err := rr.br.Peek(n)
			if err != nil {
				return unexpected(err)
			}
			rr.appStatus = binary.BigEndian.Uint32(b)
			rr.protoStatus = b[4]
			if _, err := rr.br.Discard(n + pad); err != nil {
				return unexpected(err)
			}
			rr.ended = true
			return io.EOF
		default:
			return protocolError("unexpected record type %d", h.Type)
		}
	}
}

// unexpected turns the end of the connection inside a response into
// io.ErrUnexpectedEOF, so that it is never taken for the response's end.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// protoStatusText names an FCGI_END_REQUEST protocol status.
func protoStatusText(s uint8) string {
	switch s {
	case statusRequestComplete:
		return "request complete"
	case statusCantMpxConn:
		return "cannot multiplex"
	case statusOverloaded:
		return "overloaded"
	case statusUnknownRole:
		return "unknown role"
	}
	return fmt.Sprintf("status %d", s)
}
