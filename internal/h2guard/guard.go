// Package h2guard sits between a TLS connection and Go's HTTP/2 server
// and enforces the few HTTP/2 rules that server does not (RFC 9113):
//
//   - A request carrying a connection-specific header field (connection,
//     keep-alive, proxy-connection, transfer-encoding, upgrade, or te
//     other than "trailers") is malformed (section 8.2.2). Go answers it
//     400; the guard makes it a connection error PROTOCOL_ERROR, which
//     section 5.4.1 allows for any stream error.
//   - A request body that does not add up to its content-length is
//     malformed (section 8.1.1). Go ignores the rest of a body once its
//     handler has answered; the guard counts DATA bytes and ends the
//     connection with PROTOCOL_ERROR on a mismatch, whenever it arrives.
//   - A SETTINGS frame may repeat a setting; its values are processed in
//     order (section 6.5). Go rejects repeats as a flood guard; the guard
//     rewrites such a frame to the same settings, each named once.
//
// The guard reads the client's frames as Go's server reads them, with an
// HPACK scanner of its own (hpackscan.go) that keeps, per table entry,
// only what the rules need. It never decides what Go itself checks: when
// the client's bytes stop making sense (a bad preface, an HPACK error, a
// frame out of place) it steps aside for the rest of the connection and
// Go ends it with the right error.
//
// It also holds back Go's RST_STREAM NO_ERROR for a request answered
// before its body began, briefly, so that a WINDOW_UPDATE already on its
// way that overflows the stream's window is answered FLOW_CONTROL_ERROR
// (RFC 9113 6.9.1) rather than lost to a closed stream (earlyreset.go).
//
// Cost (BenchmarkGuard, a browser's header block of 16 fields): about
// 0.35 µs per request when the fields are in the dynamic table, 0.6 µs
// when each request brings new literal values (Huffman decoding), and no
// allocation per frame or request; per connection, 4 allocations (4 KiB,
// most of it the HPACK table).
package h2guard

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a server-side HTTP/2 connection with the guard on its reads.
// Reads must come from one goroutine at a time (Go's server has one
// reader); writes may come from any, and are serialized so the guard's
// GOAWAY never lands inside one of the server's frames.
type Conn struct {
	net.Conn

	in inspector // client bytes; only Read touches it

	// ready are approved bytes served before anything new is read: a
	// held frame header or a rewritten SETTINGS frame (a slice of hold).
	ready []byte
	// hold keeps the start of a frame the guard must see whole before Go
	// may read any of it: a frame header split across reads (its type
	// decides what follows) or a SETTINGS frame (it may be rewritten).
	hold     [frameHeaderLen + maxSettingsPayload]byte
	holdN    int // bytes of hold filled
	holdNeed int // bytes hold must reach before it is inspected (0: none held)

	failed   atomic.Bool // a violation ended the connection
	violated *Violation  // what ended it (written before failed is set)

	wmu sync.Mutex
	out outbound // the server's frames; guarded by wmu

	// Early resets (earlyreset.go): requests whose body has not begun,
	// guarded by wmu; earlyN mirrors len(early) for a lock-free look.
	early         map[uint32]earlyStream
	earlyN        atomic.Int32
	heldN         int           // early resets held back
	resetHold     time.Duration // how long one is held at most
	initialWindow atomic.Int64  // the client's SETTINGS_INITIAL_WINDOW_SIZE
}

// New guards c, a connection on which the client's first bytes are the
// HTTP/2 client preface (TLS with ALPN "h2").
func New(c net.Conn) *Conn {
	g := &Conn{Conn: c, resetHold: resetHold}
	g.initialWindow.Store(65535) // RFC 9113 6.9.2
	g.in.init(g)
	return g
}

// ConnectionState lets Go's HTTP/2 server see the TLS state of the
// connection beneath (r.TLS in handlers, its TLS version and cipher
// checks), as it would on the *tls.Conn itself.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if cs, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return cs.ConnectionState()
	}
	return tls.ConnectionState{}
}

// Violation is the rule a client broke and how the connection ended.
func (c *Conn) Violation() *Violation {
	if !c.failed.Load() {
		return nil
	}
	return c.violated
}

// Read returns the client's bytes as they came, except that SETTINGS
// frames may be rewritten; after a violation it returns io.EOF, which Go's
// server takes for a client that went away.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(c.ready) > 0 {
			n := copy(p, c.ready)
			c.ready = c.ready[n:]
			return n, nil
		}
		if c.failed.Load() {
			return 0, io.EOF
		}
		if c.in.bypass {
			return c.Conn.Read(p)
		}
		if c.holdNeed > 0 {
			m, err := c.Conn.Read(c.hold[c.holdN:c.holdNeed])
			c.holdN += m
			if c.holdN == c.holdNeed {
				c.releaseHold()
				continue
			}
			if err != nil {
				return 0, err
			}
			continue
		}
		n, err := c.Conn.Read(p)
		keep := n
		if n > 0 {
			keep = c.inspect(p[:n])
			if c.failed.Load() {
				return 0, io.EOF
			}
		}
		if keep > 0 || err != nil {
			return keep, err
		}
	}
}

// inspect runs the guard over b, bytes just read into the caller's
// buffer, and returns how many of them (rewritten in place) the caller
// gets now; the rest went to hold. On a violation it ends the connection.
func (c *Conn) inspect(b []byte) int {
	n, held, v := c.in.feed(b)
	if v != nil {
		c.fail(v)
		return 0
	}
	if held >= 0 {
		c.holdN = copy(c.hold[:], b[held:n])
		c.holdNeed = c.in.holdNeed
		return held
	}
	return n
}

// releaseHold inspects a held frame start once hold has all it needed:
// a whole frame header, or a whole SETTINGS frame.
func (c *Conn) releaseHold() {
	buf := c.hold[:c.holdN]
	c.holdN, c.holdNeed = 0, 0
	n, held, v := c.in.feed(buf)
	switch {
	case v != nil:
		c.fail(v)
	case held == 0:
		// A SETTINGS header that now needs its payload: the bytes are in
		// place already.
		c.holdN = n
		c.holdNeed = c.in.holdNeed
	case held > 0:
		// hold starts with one frame header, so nothing after it can be
		// held; should it happen, stop guarding rather than lose bytes.
		c.in.bypass = true
		c.ready = buf[:n]
	default:
		c.ready = buf[:n]
	}
}

// Write sends the server's bytes and follows its frame boundaries, so a
// GOAWAY of the guard goes between two frames.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.early) > 0 {
		return c.writeWithEarlyResets(p)
	}
	n, err := c.Conn.Write(p)
	c.out.advance(p[:n])
	return n, err
}

// fail ends the connection for v: a GOAWAY with v's code (when the
// server's output is between frames, which it is unless the server is
// stuck mid-write) and then the close.
func (c *Conn) fail(v *Violation) {
	c.violated = v
	if !c.failed.CompareAndSwap(false, true) {
		return
	}
	c.wmu.Lock()
	if c.out.atBoundary() {
		var f [frameHeaderLen + 8]byte
		putFrameHeader(f[:], 8, frameGoAway, 0, 0)
		binary.BigEndian.PutUint32(f[9:], v.LastStream&streamIDMask)
		binary.BigEndian.PutUint32(f[13:], uint32(v.Code))
		c.Conn.Write(f[:]) // best effort: the connection ends either way
	}
	c.wmu.Unlock()
	c.Conn.Close()
}
