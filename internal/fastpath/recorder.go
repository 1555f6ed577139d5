package fastpath

import (
	"net"
	"time"
)

// Recorder runs a Handler on an in-memory connection, for tests of
// handlers: it captures the bytes a response would put on the wire. A
// Recorder is reusable and, once warmed up, allocates nothing itself.
type Recorder struct {
	c    conn
	sent recordConn
}

// NewRecorder returns a Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{}
	r.c.link = &link{nc: &r.sent, heapAt: -1}
	r.c.l = &Listener{}
	return r
}

// Serve runs h.ServeFast for req as the engine would and reports its
// answer; the response, if any, is then in Output.
func (r *Recorder) Serve(h Handler, req *Request) bool {
	r.sent.b = r.sent.b[:0]
	r.c.out = r.c.out[:0]
	r.c.werr = nil
	r.c.now = req.Start
	if r.c.now.IsZero() {
		r.c.now = r.c.clk.now()
	}
	r.c.w = ResponseWriter{c: &r.c, head: req.Method == "HEAD", keepAlive: req.KeepAlive, proto10: req.ProtoMinor == 0}
	if !h.ServeFast(req, &r.c.w) {
		return false
	}
	r.c.w.finish()
	_ = r.c.flush()
	return true
}

// Output returns the bytes of the last response (valid until the next
// Serve).
func (r *Recorder) Output() []byte { return r.sent.b }

// Writer returns the ResponseWriter of the last Serve, for its Status and
// BytesWritten.
func (r *Recorder) Writer() *ResponseWriter { return &r.c.w }

type recordConn struct{ b []byte }

func (c *recordConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (c *recordConn) Write(p []byte) (int, error)      { c.b = append(c.b, p...); return len(p), nil }
func (c *recordConn) Close() error                     { return nil }
func (c *recordConn) LocalAddr() net.Addr              { return recordAddr }
func (c *recordConn) RemoteAddr() net.Addr             { return recordAddr }
func (c *recordConn) SetDeadline(time.Time) error      { return nil }
func (c *recordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

var recordAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
