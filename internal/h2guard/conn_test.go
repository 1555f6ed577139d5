package h2guard

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// scriptConn is a net.Conn whose reads return the client's bytes in the
// given pieces (then io.EOF) and whose writes are recorded.
type scriptConn struct {
	pieces [][]byte
	mu     sync.Mutex
	wrote  bytes.Buffer
	closed bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	for len(c.pieces) > 0 && len(c.pieces[0]) == 0 {
		c.pieces = c.pieces[1:]
	}
	if len(c.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pieces[0])
	c.pieces[0] = c.pieces[0][n:]
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.wrote.Write(p)
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *scriptConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// split cuts b into pieces of at most size bytes (size <= 0: one piece).
func split(b []byte, size int) [][]byte {
	b = bytes.Clone(b)
	if size <= 0 {
		return [][]byte{b}
	}
	var out [][]byte
	for len(b) > size {
		out = append(out, b[:size])
		b = b[size:]
	}
	return append(out, b)
}

// run feeds the client bytes to a guard in pieces of piece bytes and
// reads them out readSize at a time (0: as Go's framer does, a header
// then its payload) until EOF. It returns what the server would read,
// the guard's verdict and what the guard wrote to the client.
func run(client []byte, piece, readSize int) (got []byte, v *Violation, wrote []byte) {
	sc := &scriptConn{pieces: split(client, piece)}
	g := New(sc)
	if readSize == 0 {
		got = readLikeFramer(g)
	} else {
		buf := make([]byte, readSize)
		for {
			n, err := g.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return got, g.Violation(), bytes.Clone(sc.wrote.Bytes())
}

// readLikeFramer reads as Go's HTTP/2 server does: the preface, then
// each frame's 9-byte header and exactly its payload.
func readLikeFramer(r io.Reader) []byte {
	var got []byte
	pre := make([]byte, len(http2.ClientPreface))
	n, err := io.ReadFull(r, pre)
	got = append(got, pre[:n]...)
	if err != nil {
		return got
	}
	for {
		var hdr [9]byte
		n, err := io.ReadFull(r, hdr[:])
		got = append(got, hdr[:n]...)
		if err != nil {
			return got
		}
		length := int64(hdr[0])<<16 | int64(hdr[1])<<8 | int64(hdr[2])
		var payload bytes.Buffer // not make(length): a fuzzed length may be 16 MiB
		m, err := io.CopyN(&payload, r, length)
		got = append(got, payload.Bytes()...)
		if err != nil || m < length {
			return got
		}
	}
}

// client builds a client's byte stream with a real framer and encoder.
type client struct {
	buf   bytes.Buffer
	fr    *http2.Framer
	block bytes.Buffer
	enc   *hpack.Encoder
}

func newClient() *client {
	c := &client{}
	c.buf.WriteString(http2.ClientPreface)
	c.fr = http2.NewFramer(&c.buf, nil)
	c.fr.AllowIllegalWrites = true
	c.enc = hpack.NewEncoder(&c.block)
	return c
}

// encode returns the HPACK block of fields, given as name, value pairs.
func (c *client) encode(fields ...string) []byte {
	c.block.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(c.block.Bytes())
}

func (c *client) settings(s ...http2.Setting) *client {
	c.fr.WriteSettings(s...)
	return c
}

// request sends HEADERS (END_HEADERS) with a GET's pseudo-fields plus extra.
func (c *client) request(stream uint32, endStream bool, extra ...string) *client {
	fields := append([]string{":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/"}, extra...)
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: c.encode(fields...), EndStream: endStream, EndHeaders: true})
	return c
}

func (c *client) post(stream uint32, contentLength string) *client {
	return c.request(stream, false, "content-length", contentLength)
}

func (c *client) data(stream uint32, end bool, body string) *client {
	c.fr.WriteData(stream, end, []byte(body))
	return c
}

func (c *client) bytes() []byte { return bytes.Clone(c.buf.Bytes()) }
