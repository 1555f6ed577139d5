package proxy

// Chunked response bodies on the fast path: read from the upstream,
// re-framed for the client, trailer fields included.

import (
	"bytes"
	"errors"
	"io"

	"portico/internal/fastpath"
)

var errBadChunk = errors.New("malformed chunked encoding from upstream")

// maxChunkLine bounds a chunk-size line (as Go's chunked reader).
const maxChunkLine = 4096

// chunkSize reads a chunk-size line and returns the size (extensions are
// dropped, as Go's chunked reader does).
func (c *upConn) chunkSize() (int64, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.r:c.w], '\n'); i >= 0 {
			line := c.buf[c.r : c.r+i]
			c.r += i + 1
			line = bytes.TrimRight(line, " \t\r")
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = bytes.TrimRight(line[:j], " \t")
			}
			if len(line) == 0 || len(line) > 16 {
				return 0, errBadChunk
			}
			var n uint64
			for _, b := range line {
				switch {
				case '0' <= b && b <= '9':
					b -= '0'
				case 'a' <= b && b <= 'f':
					b -= 'a' - 10
				case 'A' <= b && b <= 'F':
					b -= 'A' - 10
				default:
					return 0, errBadChunk
				}
				n = n<<4 | uint64(b)
			}
			if n > 1<<62 {
				return 0, errBadChunk
			}
			return int64(n), nil
		}
		if c.w-c.r > maxChunkLine {
			return 0, errBadChunk
		}
		if err := c.fillBody(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// need makes at least n bytes readable.
func (c *upConn) need(n int) error {
	for c.w-c.r < n {
		if err := c.fillBody(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// copyChunked relays a chunked body, re-framed, with its trailer fields.
func (h *Handler) copyChunked(c *upConn, w *fastpath.ResponseWriter) error {
	for {
		if c.r == c.w {
			if w.Flush() != nil {
				return errClientWrite
			}
		}
		left, err := c.chunkSize()
		if err != nil {
			return err
		}
		if left == 0 {
			break
		}
		for left > 0 {
			if c.r == c.w {
				if w.Flush() != nil {
					return errClientWrite
				}
				if err := c.need(1); err != nil {
					return err
				}
			}
			k := int(min(int64(c.w-c.r), left))
			if w.WriteChunk(c.buf[c.r:c.r+k]) != nil {
				return errClientWrite
			}
			c.r += k
			left -= int64(k)
		}
		if err := c.need(2); err != nil {
			return err
		}
		if c.buf[c.r] != '\r' || c.buf[c.r+1] != '\n' {
			return errBadChunk
		}
		c.r += 2
	}
	// Trailer section: field lines, then an empty line.
	var t []byte
	for {
		var i int
		for {
			if i = bytes.IndexByte(c.buf[c.r:c.w], '\n'); i >= 0 {
				break
			}
			if c.w-c.r > maxHeadBytes {
				return errBadChunk
			}
			if err := c.fillBody(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		line := c.buf[c.r : c.r+i]
		c.r += i + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			break
		}
		k := bytes.IndexByte(line, ':')
		if k <= 0 {
			return errBadChunk
		}
		name, val := line[:k], bytes.Trim(line[k+1:], " \t")
		for _, b := range name {
			if !tokenByte[b] {
				return errBadChunk
			}
		}
		for _, b := range val {
			if b < ' ' && b != '\t' || b == 0x7f {
				return errBadChunk
			}
		}
		t = appendCanonical(t, name)
		t = append(t, ": "...)
		t = append(t, val...)
		t = append(t, "\r\n"...)
	}
	if w.EndChunks(t) != nil {
		return errClientWrite
	}
	return nil
}
