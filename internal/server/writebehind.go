package server

import (
	"net"
	"sync"
	"time"
)

// writeBehindConn sits under TLS and gathers what the layers above write
// into one buffer that a helper goroutine sends, so a burst of small
// writes costs one system call instead of one each.
//
// Why: Go's HTTP/2 server flushes its frame buffer whenever its write
// queue runs empty, which under load means a TLS record and a write(2)
// for the HEADERS and another for the DATA of nearly every response
// (1.85 writes per request for a 1 KiB file under h2load, against
// nginx's one). Those system calls were a quarter of portico's CPU per
// request over HTTP/2. Returning from Write at once lets the server go on
// with other streams while the helper's write is pending; by the time the
// helper runs, the next responses have joined the buffer (0.23 writes per
// request in the same test, and portico's CPU per request down from 47 to
// 33 microseconds in bench/tls-bench.sh; nginx's: 19). portico's own
// HTTP/2 engine (internal/h2) gathers its frames itself, so its
// connections switch the helper off (writeThrough). HTTP/1.1 over TLS
// keeps it: a response with Connection: close and its close_notify then
// leave in one write, and without the helper new TLS connections per
// second fell 12% (tls-bench.sh, 5 rounds, 3180 against 3630), more than
// the 2-14% it costs keep-alive requests (wrk, three interleaved pairs).
//
// It needs the write timeout of the progressConn beneath it: that bounds
// every write of the helper (callers' own write deadlines are overridden
// per write there already), so a client that stops reading releases the
// helper, and a closed connection lingers at most that long to send what
// it was given before Close.
type writeBehindConn struct {
	net.Conn // a progressConn with a write timeout

	mu      sync.Mutex
	changed sync.Cond // signalled when pending shrinks, the helper stops or Close begins
	pending []byte    // written, not yet handed to the helper's write
	spare   []byte    // the helper's last buffer, for the next pending
	writing bool      // the helper goroutine runs
	through bool      // writes go straight to Conn (writeThrough)
	closing bool      // Close was called: the helper closes the connection when done
	err     error     // the first write error, returned by later Writes
}

// writeBehindLimit is how much a connection may hold unsent before Write
// waits for the helper: the backpressure that keeps a slow client from
// making portico buffer a whole response. One write of the helper is then
// at most this plus a TLS record (80 KiB), well under the slice that must
// go out within one write timeout on the sendfile path (sendfileSlice).
const writeBehindLimit = 64 << 10

// writeBehindKeep is the largest buffer that goes back to the pool when a
// burst is out; bigger ones (after a large download) are dropped.
const writeBehindKeep = 16 << 10

// writeBehindBufs holds the buffers of connections between bursts, so an
// idle connection holds none (like the buffers of Go's HTTP/2 server).
var writeBehindBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func getWriteBehindBuf() []byte { return (*(writeBehindBufs.Get().(*[]byte)))[:0] }

func putWriteBehindBuf(b []byte) {
	if b != nil && cap(b) <= writeBehindKeep {
		b = b[:0]
		writeBehindBufs.Put(&b)
	}
}

// SetWriteDeadline is a no-op: the helper's progressConn gives each of
// its writes the write timeout, and a deadline set from above would cut
// bytes Write already accepted. crypto/tls does exactly that when it
// sends close_notify: it queues the alert, then sets the deadline to now
// so that later writes fail, and the response still pending in the helper
// was lost (the client saw the connection close with no answer).
func (c *writeBehindConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only; see SetWriteDeadline.
func (c *writeBehindConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

func newWriteBehindConn(c net.Conn) *writeBehindConn {
	w := &writeBehindConn{Conn: c}
	w.changed.L = &w.mu
	return w
}

// writeThrough makes later writes go straight to the connection, once
// what is pending is out: for HTTP/2, whose engine gathers a burst of
// responses into one write itself, the helper would only add a goroutine
// switch and a copy per write.
func (c *writeBehindConn) writeThrough() {
	c.mu.Lock()
	c.through = true
	c.mu.Unlock()
}

func (c *writeBehindConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.through {
		for c.writing && c.err == nil {
			c.changed.Wait()
		}
		closing, err := c.closing, c.err
		c.mu.Unlock()
		if closing {
			return 0, net.ErrClosed
		}
		if err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.pending) >= writeBehindLimit {
		c.changed.Wait()
	}
	if c.closing {
		return 0, net.ErrClosed
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.pending == nil {
		c.pending = getWriteBehindBuf()
	}
	c.pending = append(c.pending, p...)
	if !c.writing {
		c.writing = true
		go c.writeOut()
	}
	return len(p), nil
}

// writeOut is the helper: it sends pending until it is empty or a write
// fails, then closes the connection if Close was called meanwhile.
func (c *writeBehindConn) writeOut() {
	c.mu.Lock()
	for len(c.pending) > 0 && c.err == nil {
		buf := c.pending
		c.pending = c.spare // nil at first: Write takes one from the pool
		c.spare = nil
		c.mu.Unlock()
		_, err := c.Conn.Write(buf)
		c.mu.Lock()
		if c.pending == nil {
			c.pending = buf[:0]
		} else {
			c.spare = buf[:0]
		}
		if err != nil {
			c.err = err
		}
		c.changed.Broadcast()
	}
	c.writing = false
	putWriteBehindBuf(c.pending)
	putWriteBehindBuf(c.spare)
	c.pending, c.spare = nil, nil
	closing := c.closing
	c.changed.Broadcast()
	c.mu.Unlock()
	if closing {
		c.Conn.Close()
	}
}

// Close returns at once. With nothing pending it closes the connection;
// otherwise the helper closes it once the last bytes are out (or its write
// times out), and reads end now so no reader waits for that.
func (c *writeBehindConn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closing = true
	c.changed.Broadcast()
	writing := c.writing
	c.mu.Unlock()
	if !writing {
		return c.Conn.Close()
	}
	return c.Conn.SetReadDeadline(time.Unix(1, 0))
}
