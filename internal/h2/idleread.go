package h2

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// readBufferSize is the read loop's buffer: small, since TLS buffers a
// whole record beneath, and a read as large as the buffer (a DATA
// payload) goes around it.
const readBufferSize = 4 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// idleReader is the read loop's buffered reader. Over TLS it gives its
// buffer back to a pool whenever the loop is about to wait with nothing
// buffered (park), and then waits with a one-byte read: crypto/tls
// decrypts the record that arrives into its own buffer and hands out one
// byte, and the rest comes from there, without a system call, once a
// pooled buffer is taken again. So an idle connection holds no read
// buffer (4 KiB of what an idle HTTP/2 connection cost). Over plain TCP
// (h2c) that one-byte read would be a second system call per wait, so
// the buffer stays.
// Only the read loop uses it.
type idleReader struct {
	nc      net.Conn
	br      *bufio.Reader // nil while parked
	parks   bool          // the buffer may be parked (TLS)
	held    *atomic.Int64 // the server's count of buffers held
	oneByte [1]byte
}

func newIdleReader(nc net.Conn, held *atomic.Int64) *idleReader {
	_, isTLS := nc.(*tls.Conn)
	r := &idleReader{nc: nc, parks: isTLS, held: held}
	r.take()
	return r
}

func (r *idleReader) take() {
	r.br = readerPool.Get().(*bufio.Reader)
	r.br.Reset(r.nc)
	r.held.Add(1)
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.br != nil {
		return r.br.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.nc.Read(r.oneByte[:])
	if n == 0 {
		return 0, err
	}
	r.take()
	p[0] = r.oneByte[0]
	return 1, err
}

// Buffered is the number of bytes that can be read without waiting.
func (r *idleReader) Buffered() int {
	if r.br == nil {
		return 0
	}
	return r.br.Buffered()
}

// Peek returns the next n buffered bytes; the caller checked Buffered.
func (r *idleReader) Peek(n int) ([]byte, error) { return r.br.Peek(n) }

// park returns the buffer to the pool if it holds nothing and the
// connection is one whose buffer may be parked.
func (r *idleReader) park() {
	if r.parks && r.br != nil && r.br.Buffered() == 0 {
		r.release()
	}
}

// release returns the buffer for good (the connection ends).
func (r *idleReader) release() {
	if r.br != nil {
		r.br.Reset(nil)
		readerPool.Put(r.br)
		r.br = nil
		r.held.Add(-1)
	}
}
