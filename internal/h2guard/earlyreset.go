package h2guard

import (
	"encoding/binary"
	"time"

	"golang.org/x/net/http2"
)

// Early resets.
//
// When a handler has answered a request whose body has not begun, Go's
// server ends the stream with RST_STREAM NO_ERROR right after the answer
// (RFC 9113 8.1: stop sending, the response is complete) and forgets it.
// A frame the client sent meanwhile then meets a closed stream: a
// WINDOW_UPDATE that overflows the stream's window (RFC 9113 6.9.1:
// stream error FLOW_CONTROL_ERROR) is ignored, and the client sees
// NO_ERROR or FLOW_CONTROL_ERROR depending on which frame won the race.
//
// The guard takes the race away: it keeps that RST_STREAM NO_ERROR back
// until the client's next frame on the stream, or resetHold. DATA or
// trailers send it at once; a WINDOW_UPDATE that certainly overflows the
// window turns it into FLOW_CONTROL_ERROR; the client's own RST_STREAM
// makes it moot. Only streams still waiting for their first DATA are
// concerned: a body under way gets Go's reset as it comes.

// resetHold is how long an early reset waits for the client's next frame
// on the stream: far longer than frames already on their way take, and
// short enough that a client that stalls hears "stop" soon.
const resetHold = 250 * time.Millisecond

// maxHeldResets bounds the resets kept back at once on a connection.
const maxHeldResets = 64

// maxWindow is the largest flow-control window (RFC 9113 6.9.1).
const maxWindow = 1<<31 - 1

// earlyStream is a request whose body has not begun: HEADERS without
// END_STREAM, and no DATA yet.
type earlyStream struct {
	windowIncs int64       // WINDOW_UPDATE increments the client sent on it
	held       bool        // Go's RST_STREAM NO_ERROR for it is kept back
	timer      *time.Timer // sends it after resetHold
}

// bodyPending notes a request whose body is to come (reader).
func (c *Conn) bodyPending(stream uint32) {
	c.wmu.Lock()
	if len(c.early) < maxTrackedBodies {
		if c.early == nil {
			c.early = make(map[uint32]earlyStream)
		}
		c.early[stream] = earlyStream{}
		c.earlyN.Store(int32(len(c.early)))
	}
	c.wmu.Unlock()
}

// clientFrame is the client's DATA, HEADERS or RST_STREAM on stream, seen
// before Go reads it (reader).
func (c *Conn) clientFrame(stream uint32, typ uint8) {
	if c.earlyN.Load() == 0 {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	e, ok := c.early[stream]
	if !ok {
		return
	}
	if e.held && typ != frameRSTStream {
		c.sendResetLocked(stream, http2.ErrCodeNo)
	}
	c.forgetLocked(stream, e)
}

// windowUpdate is the client's WINDOW_UPDATE on stream (reader).
func (c *Conn) windowUpdate(stream uint32, inc uint32) {
	if c.earlyN.Load() == 0 {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	e, ok := c.early[stream]
	if !ok {
		return
	}
	e.windowIncs += int64(inc)
	if e.held && c.overflowsLocked(e, c.out.dataBytes) {
		c.sendResetLocked(stream, http2.ErrCodeFlowControl)
		c.forgetLocked(stream, e)
		return
	}
	c.early[stream] = e
}

// overflowsLocked reports whether the stream's send window is certainly
// above maxWindow: even if every DATA byte the server wrote so far
// (dataBytes, all streams) was on this stream, the client's initial
// window plus its increments exceed it.
func (c *Conn) overflowsLocked(e earlyStream, dataBytes int64) bool {
	return c.initialWindow.Load()+e.windowIncs-dataBytes > maxWindow
}

// serverReset is the server's RST_STREAM with code on stream, about to
// be written, after dataBytes of DATA. It says whether to hold it back
// (drop) or write FLOW_CONTROL_ERROR instead (replace).
func (c *Conn) serverResetLocked(stream uint32, code uint32, dataBytes int64) (drop, replace bool) {
	e, ok := c.early[stream]
	if !ok {
		return false, false
	}
	if code != uint32(http2.ErrCodeNo) || e.held {
		c.forgetLocked(stream, e)
		return false, false
	}
	if c.overflowsLocked(e, dataBytes) {
		c.forgetLocked(stream, e)
		return true, true
	}
	if c.heldN >= maxHeldResets {
		c.forgetLocked(stream, e)
		return false, false
	}
	e.held = true
	c.heldN++
	e.timer = time.AfterFunc(c.resetHold, func() { c.releaseReset(stream) })
	c.early[stream] = e
	return true, false
}

// releaseReset sends a held reset whose client said nothing more.
func (c *Conn) releaseReset(stream uint32) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	e, ok := c.early[stream]
	if !ok || !e.held {
		return
	}
	if !c.out.atBoundary() { // the server is mid-frame: it finishes soon
		e.timer.Reset(time.Millisecond)
		return
	}
	c.sendResetLocked(stream, http2.ErrCodeNo)
	c.forgetLocked(stream, e)
}

func (c *Conn) forgetLocked(stream uint32, e earlyStream) {
	if e.held {
		e.timer.Stop()
		c.heldN--
	}
	delete(c.early, stream)
	c.earlyN.Store(int32(len(c.early)))
}

// sendResetLocked writes RST_STREAM(stream, code) between the server's
// frames (not at all if the server is mid-frame, which it is only for
// moments: the reset is then lost, as a frame to a closed stream is).
func (c *Conn) sendResetLocked(stream uint32, code http2.ErrCode) {
	if !c.out.atBoundary() || c.failed.Load() {
		return
	}
	var f [frameHeaderLen + 4]byte
	putFrameHeader(f[:], 4, frameRSTStream, 0, stream)
	binary.BigEndian.PutUint32(f[9:], uint32(code))
	if n, _ := c.Conn.Write(f[:]); n > 0 {
		c.out.advance(f[:n])
	}
}

// writeWithEarlyResets writes p, which may hold Go's resets of early
// streams, holding back or replacing those.
func (c *Conn) writeWithEarlyResets(p []byte) (int, error) {
	type cut struct {
		at      int
		replace bool
	}
	var cuts [8]cut
	ncut := 0
	o := c.out // walked ahead over p
	for i := 0; i < len(p) && ncut < len(cuts); {
		if o.skip > 0 || o.hdrN > 0 || len(p)-i < frameHeaderLen {
			i += o.step(p[i:])
			continue
		}
		h := parseFrameHeader(p[i:])
		if h.typ == frameRSTStream && h.length == 4 && i+frameHeaderLen+4 <= len(p) {
			code := binary.BigEndian.Uint32(p[i+frameHeaderLen:])
			if drop, replace := c.serverResetLocked(h.stream, code, o.dataBytes); drop {
				cuts[ncut] = cut{i, replace}
				ncut++
			}
		}
		i += o.step(p[i:])
	}
	done := 0
	for _, ct := range cuts[:ncut] {
		if _, err := c.writeLocked(p[done:ct.at]); err != nil {
			return done, err
		}
		if ct.replace {
			var f [frameHeaderLen + 4]byte
			copy(f[:frameHeaderLen], p[ct.at:])
			binary.BigEndian.PutUint32(f[frameHeaderLen:], uint32(http2.ErrCodeFlowControl))
			if _, err := c.writeLocked(f[:]); err != nil {
				return ct.at, err
			}
		}
		done = ct.at + frameHeaderLen + 4
	}
	if _, err := c.writeLocked(p[done:]); err != nil {
		return done, err
	}
	return len(p), nil
}

func (c *Conn) writeLocked(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := c.Conn.Write(b)
	c.out.advance(b[:n])
	return n, err
}
