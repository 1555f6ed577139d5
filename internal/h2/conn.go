package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// maxWindow is the largest flow-control window (RFC 9113 6.9.1).
const maxWindow = 1<<31 - 1

// conn is one HTTP/2 connection. The read loop (serve) owns the framer
// and the stream-opening state; everything handlers also touch (the
// streams, the windows, the output buffer and the HPACK encoder) is
// guarded by mu.
type conn struct {
	srv        *Server
	nc         net.Conn
	handler    http.Handler
	ctx        context.Context // parent of every request's context; never cancelled itself
	tlsState   *tls.ConnectionState
	remoteAddr string
	rd         *idleReader // the read loop's (idleread.go)
	fr         *http2.Framer

	// Read loop only.
	maxClientStream uint32 // highest stream the client opened
	sawSettings     bool

	mu   sync.Mutex
	cond sync.Cond // stream windows, body data, output room, resets

	streams  map[uint32]*stream
	open     int      // streams whose handler has not answered
	running  int      // handlers not yet returned (reset ones too)
	answered []uint32 // answered streams whose body may still come, oldest first

	out        []byte // frames waiting for a flush
	spare      []byte
	fw         *http2.Framer // writes frames into out
	henc       *hpack.Encoder
	hbuf       bytes.Buffer
	flushing   bool // a flush is scheduled or running
	flusherUp  bool // a flusher goroutine runs (it ends once nothing is scheduled)
	processing bool // the read loop is working through read frames
	writeErr   error
	closed     bool // the connection is ending: no more frames, streams cancelled
	started    bool // our SETTINGS are written: other frames may follow

	resetIDs  [32]uint32 // streams we reset lately, whose frames in flight are ignored
	resetNext int

	sendWindow      int64 // connection-level, the client's credit to us
	peerInitWindow  int32
	peerMaxFrame    uint32
	recvWindow      int64 // connection-level credit we gave and the client has not used
	recvCredit      int64 // consumed bytes not yet given back
	goAwaySent      bool
	goAwayLast      uint32 // the last stream our first GOAWAY named
	goAwayCloseWhen bool   // close once no handler runs (graceful)
	idleTimer       *time.Timer

	wmu sync.Mutex // serializes writes to nc, taken before mu
}

// outWriter lets the frame writer append to conn.out (under mu).
type outWriter struct{ c *conn }

func (w outWriter) Write(p []byte) (int, error) {
	w.c.out = append(w.c.out, p...)
	return len(p), nil
}

func newConn(s *Server, nc net.Conn, h http.Handler, ctx context.Context) *conn {
	c := &conn{
		srv:            s,
		nc:             nc,
		handler:        h,
		ctx:            context.WithoutCancel(ctx),
		remoteAddr:     nc.RemoteAddr().String(),
		streams:        map[uint32]*stream{},
		sendWindow:     65535,
		peerInitWindow: 65535,
		peerMaxFrame:   16384,
		recvWindow:     65535,
	}
	c.cond.L = &c.mu
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	c.rd = newIdleReader(nc, &s.readBuffers)
	c.fr = http2.NewFramer(nil, c.rd)
	c.fr.SetMaxReadFrameSize(s.maxFrameSize())
	c.fr.MaxHeaderListSize = s.maxHeaderBytes()
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.ReadMetaHeaders.SetMaxStringLength(int(s.maxHeaderBytes()))
	c.fr.SetReuseFrames()
	c.fw = http2.NewFramer(outWriter{c}, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// errClientPreface is a connection that does not start with HTTP/2's
// preface.
var errClientPreface = errors.New("h2: bad client preface")

func (c *conn) serve() {
	defer c.rd.release()
	defer c.shutdown()
	c.nc.SetReadDeadline(time.Now().Add(prefaceTimeout))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.rd, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return
	}
	c.nc.SetReadDeadline(time.Time{})

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.started = true
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.srv.maxStreams()},
		{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		{ID: http2.SettingMaxHeaderListSize, Val: c.srv.maxHeaderBytes()},
	}
	if f := c.srv.maxFrameSize(); f != defaultMaxFrameSize {
		settings = append(settings, http2.Setting{ID: http2.SettingMaxFrameSize, Val: f})
	}
	c.fw.WriteSettings(settings...)
	c.fw.WriteWindowUpdate(0, connWindow-65535)
	c.recvWindow = connWindow
	c.armIdleLocked()
	c.mu.Unlock()
	c.flush()

	for {
		if !c.wholeFrameBuffered() {
			// About to wait for the client: whatever is pending goes
			// out now, unless a flush is already on its way.
			c.mu.Lock()
			c.processing = false
			c.mu.Unlock()
			c.flush()
			c.rd.park()
		}
		var f http2.Frame
		fh, err := c.fr.ReadFrameHeader()
		if err == nil {
			f, err = c.fr.ReadFrameForHeader(fh)
		}
		c.mu.Lock()
		c.processing = true
		if c.closed && !c.goAwaySent {
			c.mu.Unlock()
			return
		}
		if err == nil {
			err = c.processFrame(f)
		}
		c.mu.Unlock()
		if err == nil {
			continue
		}
		var se http2.StreamError
		if errors.As(err, &se) && fh.Type == http2.FrameWindowUpdate && c.isIdle(se.StreamID) {
			// A WINDOW_UPDATE (of increment 0) for a stream not opened
			// is the connection error RFC 9113 5.1 asks for. Reset, the
			// stream would be an idle one (6.4 forbids it), and recorded
			// in resetIDs, its HEADERS would later be ignored as if in
			// flight: no answer ever.
			err = http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if errors.As(err, &se) {
			c.mu.Lock()
			if fh.Type == http2.FrameHeaders && c.isIdle(se.StreamID) && se.StreamID%2 == 1 {
				// A HEADERS frame the framer rejected still opened
				// (and so closed) its stream: DATA already on its
				// way is then for a closed stream, not an idle one.
				c.maxClientStream = se.StreamID
			}
			c.resetStreamLocked(se.StreamID, se.Code)
			c.mu.Unlock()
			continue
		}
		var ce http2.ConnectionError
		switch {
		case errors.As(err, &ce):
			c.fail(http2.ErrCode(ce))
		case errors.Is(err, http2.ErrFrameTooLarge):
			c.fail(http2.ErrCodeFrameSize)
		}
		return
	}
}

// wholeFrameBuffered reports whether the next frame can be read without
// waiting for the client.
func (c *conn) wholeFrameBuffered() bool {
	n := c.rd.Buffered()
	if n < 9 {
		return false
	}
	h, _ := c.rd.Peek(9)
	if http2.FrameType(h[3]) == http2.FrameHeaders && h[4]&byte(http2.FlagHeadersEndHeaders) == 0 {
		// The framer reads a header block whole: this frame comes with
		// the CONTINUATION frames after it, which may not have come yet.
		// Waiting for them marked as working through frames, the read
		// loop held the responses that handlers left for it to flush.
		return false
	}
	return n >= 9+int(h[0])<<16|int(h[1])<<8|int(h[2])
}

// fail ends the connection with GOAWAY code: it flushes what is pending
// and the GOAWAY, stops sending, and reads and discards what the client
// still sends for a moment so that closing does not reset the
// connection before the client reads the GOAWAY.
func (c *conn) fail(code http2.ErrCode) {
	c.mu.Lock()
	if !c.closed {
		last := c.maxClientStream
		if c.goAwaySent {
			// After a graceful GOAWAY, streams the client opened were
			// ignored but still counted in maxClientStream; a GOAWAY
			// may not name a later stream than one before it (RFC 9113
			// 6.8): the client may have retried those elsewhere.
			last = c.goAwayLast
		}
		c.fw.WriteGoAway(last, code, nil)
		c.goAwaySent = true
	}
	c.cancelAllLocked()
	c.mu.Unlock()
	c.flush()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerAfterGoAway))
	io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
}

// shutdown closes the connection and releases its streams' handlers.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.cancelAllLocked()
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()
	c.nc.Close()
}

// cancelAllLocked marks the connection closed and cancels every stream.
func (c *conn) cancelAllLocked() {
	if c.closed {
		return
	}
	c.closed = true
	for id, st := range c.streams {
		st.cancelLocked()
		delete(c.streams, id)
	}
	c.cond.Broadcast()
}

// goAwayGracefully is Server.Shutdown for one connection: GOAWAY
// NO_ERROR with the last stream it has, and close once those are done.
func (c *conn) goAwayGracefully() {
	c.mu.Lock()
	if c.closed || c.goAwaySent {
		c.mu.Unlock()
		return
	}
	if !c.started {
		// No SETTINGS yet, so no GOAWAY may go first (RFC 9113 3.4):
		// a connection that has not begun just closes.
		c.closed = true
		c.mu.Unlock()
		c.nc.Close()
		return
	}
	c.fw.WriteGoAway(c.maxClientStream, http2.ErrCodeNo, nil)
	c.goAwaySent = true
	c.goAwayLast = c.maxClientStream
	c.goAwayCloseWhen = true
	done := c.running == 0
	c.mu.Unlock()
	c.flush()
	if done {
		c.closeGracefully()
	}
}

// closeGracefully ends a connection that said GOAWAY NO_ERROR and has no
// handler left: the read loop sees its socket end.
func (c *conn) closeGracefully() {
	c.flush() // the last answers
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerAfterGoAway))
}

// armIdleLocked starts the idle timer when no handler runs.
func (c *conn) armIdleLocked() {
	d := c.srv.IdleTimeout
	if d <= 0 || c.running > 0 || c.closed {
		return
	}
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(d, c.idleFired)
		return
	}
	c.idleTimer.Reset(d)
}

func (c *conn) idleFired() {
	c.mu.Lock()
	idle := c.running == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.goAwayGracefully()
	}
}

// processFrame handles one frame from the client, under mu.
func (c *conn) processFrame(f http2.Frame) error {
	if !c.sawSettings {
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.sawSettings = true
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.StreamID != 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if !f.IsAck() {
			c.fw.WritePing(true, f.Data)
			return c.checkOutLocked()
		}
	case *http2.RSTStreamFrame:
		if c.isIdle(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if st := c.streams[f.StreamID]; st != nil {
			st.cancelLocked()
			c.forgetLocked(st)
		}
	case *http2.PriorityFrame:
		if f.StreamID == f.StreamDep {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	case *http2.GoAwayFrame:
		// The client will open no more streams; those it has finish.
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	case *http2.ContinuationFrame:
		// The framer merges CONTINUATION into its HEADERS; one on its
		// own is out of place.
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// isIdle reports whether id names a stream the client has not opened.
func (c *conn) isIdle(id uint32) bool {
	return id%2 == 1 && id > c.maxClientStream || id%2 == 0 && id != 0
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	// Values apply in order, and a setting may repeat (RFC 9113 6.5).
	var err error
	f.ForeachSetting(func(s http2.Setting) error {
		if err = s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(c.peerInitWindow)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					err = http2.ConnectionError(http2.ErrCodeFlowControl)
					return err
				}
			}
			c.peerInitWindow = int32(s.Val)
			c.cond.Broadcast()
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSize(min(s.Val, 4096))
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.fw.WriteSettingsAck()
	return c.checkOutLocked()
}

// checkOutLocked ends a connection whose client sends control frames
// that need answers (PING, SETTINGS) faster than it reads them. Handlers
// flush their own data beyond maxPendingOut, so this much pending means
// writes are stuck.
func (c *conn) checkOutLocked() error {
	if len(c.out) > 16*maxPendingOut {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.cond.Broadcast()
		return nil
	}
	if c.isIdle(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := c.streams[f.StreamID]
	if st == nil {
		return nil // closed a moment ago
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	c.cond.Broadcast()
	return nil
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	if c.isIdle(id) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	n := int64(f.Length)
	// Connection flow control counts every DATA frame, whatever its
	// stream's state.
	if n > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	st := c.streams[id]
	if st == nil || st.remoteDone {
		c.creditLocked(nil, n)
		if st == nil && c.resetLately(id) {
			// In flight when we reset the stream: ignored (RFC 9113
			// 5.1). A reset for each such frame would also push the
			// other streams out of resetIDs, and their trailers in
			// flight would then end the connection.
			return nil
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if n > st.recvWindow {
		c.creditLocked(nil, n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvWindow -= n
	data := f.Data()
	st.bodyRead += int64(len(data))
	if st.declaredLength >= 0 && st.bodyRead > st.declaredLength {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.StreamEnded() && st.declaredLength >= 0 && st.bodyRead != st.declaredLength {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// Padding is credited back at once; the data when it is read.
	pad := n - int64(len(data))
	if st.answered {
		// The response is out; the body goes nowhere. A little of it
		// is let through, so the stream's rules are still checked
		// (trailers without END_STREAM, content-length) for a client
		// that sent it before it heard; beyond that the client is
		// told to stop (RST_STREAM NO_ERROR, RFC 9113 8.1).
		c.creditLocked(nil, n)
		if f.StreamEnded() {
			c.forgetLocked(st)
			return nil
		}
		st.discarded += n
		if st.discarded > discardBeforeReset || st.recvWindow <= 0 {
			// Past the allowance, or at the end of the stream's window
			// (not given back once answered): the client could send
			// nothing more to be reset for, and would wait for a
			// WINDOW_UPDATE for good.
			c.resetStreamLocked(id, http2.ErrCodeNo)
		}
		return nil
	}
	if st.bodyClosed {
		// The handler closed the body: dropped, and given back to the
		// connection at once (see streamBody.Close).
		c.creditLocked(nil, n)
		if f.StreamEnded() {
			st.remoteDone = true
		}
		return nil
	}
	c.creditLocked(st, pad)
	st.body = append(st.body, data...)
	if f.StreamEnded() {
		st.remoteDone = true
	}
	c.cond.Broadcast()
	return nil
}

// creditLocked gives n consumed bytes back to the client's windows (the
// connection's, and st's when st is not nil), in WINDOW_UPDATEs of at
// least a quarter window so that a body read in small pieces does not
// make a frame per read.
func (c *conn) creditLocked(st *stream, n int64) {
	if n <= 0 || c.closed {
		return
	}
	c.recvCredit += n
	if c.recvCredit >= connWindow/4 {
		c.fw.WriteWindowUpdate(0, uint32(c.recvCredit))
		c.recvWindow += c.recvCredit
		c.recvCredit = 0
		c.scheduleFlushLocked()
	}
	if st == nil || st.remoteDone {
		return
	}
	st.recvCredit += n
	if st.recvCredit >= streamWindow/4 {
		c.fw.WriteWindowUpdate(st.id, uint32(st.recvCredit))
		st.recvWindow += st.recvCredit
		st.recvCredit = 0
		c.scheduleFlushLocked()
	}
}

// resetStreamLocked sends RST_STREAM and forgets the stream.
func (c *conn) resetStreamLocked(id uint32, code http2.ErrCode) {
	if c.closed {
		return
	}
	c.fw.WriteRSTStream(id, code)
	c.resetIDs[c.resetNext] = id
	c.resetNext = (c.resetNext + 1) % len(c.resetIDs)
	if st := c.streams[id]; st != nil {
		st.cancelLocked()
		c.forgetLocked(st)
	}
	c.scheduleFlushLocked()
}

// resetLately reports whether we reset stream id lately: the client may
// have sent frames on it before it heard.
func (c *conn) resetLately(id uint32) bool {
	for _, r := range c.resetIDs {
		if r == id && id != 0 {
			return true
		}
	}
	return false
}

// forgetLocked removes st from the stream table; its handler, if still
// running, finds it reset.
func (c *conn) forgetLocked(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	if !st.answered {
		c.open--
	} else {
		for i, id := range c.answered {
			if id == st.id {
				c.answered = append(c.answered[:i], c.answered[i+1:]...)
				break
			}
		}
	}
	// Body bytes the handler never read go back to the connection, and
	// the buffer goes now: a reset stream's handler may run on a while.
	if unread := int64(len(st.body)); unread > 0 {
		st.body = nil
		c.creditLocked(nil, unread)
	}
	c.cond.Broadcast()
}

// processHeaders opens a stream, or takes a stream's trailers.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		if id > c.maxClientStream && c.streams[id] == nil {
			c.maxClientStream = id // opened, and closed by the reset
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if st := c.streams[id]; st != nil {
		if st.remoteDone {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		return c.processTrailers(st, f)
	}
	if c.resetLately(id) {
		return nil // trailers in flight when we reset the stream (RFC 9113 5.1)
	}
	if id <= c.maxClientStream {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if c.goAwaySent || c.closed {
		c.maxClientStream = id
		return nil // after GOAWAY: neither served nor answered
	}
	if c.running >= 4*int(c.srv.maxStreams()) {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	st := &stream{c: c, id: id, sendWindow: int64(c.peerInitWindow), recvWindow: streamWindow, declaredLength: -1}
	st.remoteDone = f.StreamEnded()
	req, status, err := c.newRequest(st, f)
	var connErr http2.ConnectionError
	if errors.As(err, &connErr) {
		// The GOAWAY names the last stream served, not this one.
		return err
	}
	c.maxClientStream = id
	if err != nil {
		return err
	}
	if c.open >= int(c.srv.maxStreams()) {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	st.req = req
	st.rw.st = st
	c.streams[id] = st
	c.open++
	c.running++
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	if status != 0 {
		st.fixedStatus = status
	}
	c.srv.workers.run(st)
	return nil
}

func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	if len(f.PseudoFields()) > 0 || f.Truncated {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	if st.declaredLength >= 0 && st.bodyRead != st.declaredLength {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st.answered {
		c.forgetLocked(st)
		return nil
	}
	for _, hf := range f.RegularFields() {
		if st.trailer == nil {
			st.trailer = http.Header{}
		}
		k := http.CanonicalHeaderKey(hf.Name)
		st.trailer[k] = append(st.trailer[k], hf.Value)
	}
	st.remoteDone = true
	c.cond.Broadcast()
	return nil
}

// handlerDone is the end of st's handler: its response is complete (or
// it was reset).
func (c *conn) handlerDoneLocked(st *stream) {
	c.running--
	// The body is closed with the handler, as net/http's is: a Read
	// still waiting on a goroutine the handler left (http.Transport's
	// body writer, after a proxied response) ends, instead of waiting
	// for a body that goes nowhere, and for good if it ends with
	// END_STREAM on the answered stream.
	st.bodyClosed = true
	if c.streams[st.id] == st {
		if st.remoteDone {
			c.forgetLocked(st)
		} else {
			// The body may still come: keep the stream to check its
			// window and length, and to reset it if DATA comes.
			c.open--
			st.answered = true
			if unread := int64(len(st.body)); unread > 0 {
				st.body = nil
				c.creditLocked(nil, unread)
			}
			c.cond.Broadcast() // for that left-over Read
			c.answered = append(c.answered, st.id)
			switch {
			case st.recvWindow <= 0:
				// The client can send no DATA, which is what has an
				// answered stream reset (processData): it would wait for
				// a WINDOW_UPDATE for good. RFC 9113 8.1's NO_ERROR now.
				c.resetStreamLocked(st.id, http2.ErrCodeNo)
			case len(c.answered) > maxAnswered:
				c.resetStreamLocked(c.answered[0], http2.ErrCodeNo)
			}
		}
	}
	if c.running == 0 {
		if c.goAwayCloseWhen {
			go c.closeGracefully()
		} else {
			c.armIdleLocked()
		}
	}
}

// scheduleFlushLocked makes sure what is in out gets written soon: by
// the read loop if it is working through frames (it flushes before it
// waits), or by a flusher goroutine.
func (c *conn) scheduleFlushLocked() {
	if c.flushing || c.processing || c.closed || len(c.out) == 0 {
		return
	}
	c.flushing = true
	if !c.flusherUp {
		c.flusherUp = true
		go c.flusher()
	}
}

// flusher writes what handlers appended, as long as flushes keep being
// scheduled; then it ends, so that an idle connection keeps no second
// goroutine (its stack was 8 KiB of the 48 an idle HTTP/2 connection
// cost). It yields once before each flush, so that the other handlers
// that are ready to run (the rest of a batch of requests that came in
// one read) append their responses first and one write carries them all.
func (c *conn) flusher() {
	for {
		runtime.Gosched()
		c.flush()
		c.mu.Lock()
		if !c.flushing || c.closed {
			c.flusherUp = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// flush writes everything pending.
func (c *conn) flush() {
	c.wmu.Lock()
	c.mu.Lock()
	c.flushing = false
	if len(c.out) == 0 || c.writeErr != nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		return
	}
	buf := c.out
	c.out = c.spare[:0]
	c.mu.Unlock()
	_, err := c.nc.Write(buf)
	c.mu.Lock()
	// The buffer is kept for the next flush unless a burst grew it (one
	// large frame a client's settings allowed, many handlers' responses
	// at once): the connection would hold that much for its life.
	c.spare = nil
	if cap(buf) <= maxKeptOut {
		c.spare = buf[:0]
	}
	failed := err != nil && c.writeErr == nil
	if failed {
		c.writeErr = err
		c.cancelAllLocked()
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.wmu.Unlock()
	if failed {
		// Closed with no lock held: a TLS connection's Close first
		// writes close_notify, which on a socket whose client reads
		// nothing waits as long as the write that failed (portico's
		// progressConn moves the deadline on), and every handler, the
		// read loop and Shutdown would wait with it for the locks.
		c.nc.Close()
	}
}

// flushLocked is flush from a caller that holds mu.
func (c *conn) flushLocked() {
	c.mu.Unlock()
	c.flush()
	c.mu.Lock()
}
