package server

import (
	"io"
	"net"
	"os"
	"time"

	"portico/internal/rawsock"
)

// progressListener wraps accepted connections in progressConn, and on a
// TLS listener with a write timeout also in writeBehindConn (HTTP/1.1
// over TLS writes a response in pieces, which the helper gathers; an
// HTTP/2 connection switches it to write-through, as its engine gathers
// them itself; plain listeners keep sendfile). A TLS listener's bare TCP connections read and write through
// rawsock.Conn (see package rawsock for why); wrapped ones (PROXY
// protocol, connection limits) keep their wrappers' reads.
type progressListener struct {
	net.Listener
	writeTimeout time.Duration
	writeBehind  bool
}

func (l progressListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok && l.writeBehind {
		if rc, err := rawsock.NewConn(tc); err == nil {
			c = rc
		}
	}
	pc := &progressConn{Conn: c, writeTimeout: l.writeTimeout}
	if l.writeBehind && l.writeTimeout > 0 {
		return newWriteBehindConn(pc), nil
	}
	return pc, nil
}

// progressConn moves the write deadline forward before every write, so a
// client that stops reading is cut off after writeTimeout without a fixed
// limit on the length of a download or a stream (net/http's WriteTimeout
// covers the whole response, which kills long downloads and SSE).
//
// It keeps io.ReaderFrom so net/http can still use sendfile, and sends big
// files in slices so the deadline moves between them.
type progressConn struct {
	net.Conn
	writeTimeout time.Duration
}

// sendfileSlice is how much of a file goes out per write deadline: small
// enough that a client reading steadily at a few KB/s keeps its connection
// under the default timeout, big enough that the extra calls cost nothing.
const sendfileSlice = 256 << 10

func (c *progressConn) Write(b []byte) (int, error) {
	if c.writeTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	return c.Conn.Write(b)
}

func (c *progressConn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{c}, r)
	}
	if c.writeTimeout <= 0 {
		return rf.ReadFrom(r)
	}
	var src io.Reader
	remaining := int64(-1)
	var outer *io.LimitedReader
	switch v := r.(type) {
	case *os.File:
		src = v
	case *io.LimitedReader:
		if f, ok := v.R.(*os.File); ok {
			src, remaining, outer = f, v.N, v
		}
	}
	if src == nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		return rf.ReadFrom(r)
	}
	var total int64
	for remaining != 0 {
		n := int64(sendfileSlice)
		if remaining > 0 && remaining < n {
			n = remaining
		}
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		w, err := rf.ReadFrom(&io.LimitedReader{R: src, N: n})
		total += w
		if remaining > 0 {
			remaining -= w
		}
		if outer != nil {
			outer.N -= w
		}
		if err != nil {
			return total, err
		}
		if w < n {
			break // end of file
		}
	}
	return total, nil
}

// CloseWrite keeps net/http's graceful close working through the wrapper.
func (c *progressConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
