package fastpath

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"portico/internal/rawsock"
)

// This file holds what a relaying handler (the reverse proxy's fast path,
// internal/proxy/fast.go) needs beyond a static file server: every
// request header as received (RawHeader), the site's default headers
// (DefaultHeaders), streaming (Flush) and chunked bodies (WriteChunk,
// EndChunks), 1xx responses (WriteInterim), giving up on a response
// (Abort), a fresh clock after a long wait (Refresh) and a look at whether
// the client is still there (ClientGone).

// RawHeader returns the header field lines of the request being served
// on w's connection, exactly as received: "name: value" lines, each
// ending in CRLF, without the request line and the final empty line. The
// engine parsed them (tokens as names, no control bytes, no obs-fold, no
// repeated Host, Connection, ...); fields it does not know are in there
// too. It returns nil when there is no such request (a Recorder). Valid
// until ServeFast returns.
//
// During ServeFast the connection's buffered input starts with the
// request being served (the engine discards it only afterwards), so this
// holds whatever a wrapping handler did to the Request's fields.
func (w *ResponseWriter) RawHeader() []byte {
	c := w.c
	if c == nil || c.br == nil || w != &c.w {
		return nil
	}
	buf, _ := c.br.Peek(c.br.Buffered())
	p := 0
	for p < len(buf) && buf[p] != '\n' {
		p++
	}
	p++ // past the request line
	start := p
	for p < len(buf) {
		if buf[p] == '\r' {
			return w.withoutHidden(buf[start:p])
		}
		for p < len(buf) && buf[p] != '\n' {
			p++
		}
		p++
	}
	return nil
}

// DefaultHeaders returns the fields set with SetDefaultHeaders.
func (w *ResponseWriter) DefaultHeaders() [][2]string { return w.defaults }

// Flush ends the header if needed and writes the buffered output to the
// client now (a streamed body: each piece as it comes).
func (w *ResponseWriter) Flush() error {
	if !w.started {
		return errNoHeader
	}
	w.endHeader()
	w.slow = true
	if w.c.l.opts.WriteTimeout > 0 {
		w.c.setWriteDeadline(w.c.clk.now())
	}
	return w.c.flush()
}

// WriteChunk writes p as one chunk of a chunked body (the handler wrote
// "Transfer-Encoding: chunked"); BytesWritten counts p, not the framing.
// An empty p writes nothing.
func (w *ResponseWriter) WriteChunk(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if !w.started {
		return errNoHeader
	}
	w.endHeader()
	if w.head {
		w.bytes += int64(len(p))
		return nil
	}
	c := w.c
	c.out = strconv.AppendUint(c.out, uint64(len(p)), 16)
	c.out = append(c.out, '\r', '\n')
	if _, err := w.Write(p); err != nil {
		return err
	}
	c.out = append(c.out, '\r', '\n')
	return c.werr
}

// EndChunks ends a chunked body: the last chunk, then trailer, field
// lines each ending in CRLF (may be empty), then the empty line.
func (w *ResponseWriter) EndChunks(trailer []byte) error {
	if !w.started {
		return errNoHeader
	}
	w.endHeader()
	if w.head {
		return nil
	}
	c := w.c
	c.out = append(c.out, "0\r\n"...)
	c.out = append(c.out, trailer...)
	c.out = append(c.out, '\r', '\n')
	if len(c.out) >= outFlushSize {
		return c.flush()
	}
	return c.werr
}

// errAborted is the write error of a response its handler abandoned.
var errAborted = errors.New("fastpath: response aborted by its handler")

// Abort abandons the response: the engine closes the connection once
// ServeFast returns (true), as net/http does when a handler panics with
// http.ErrAbortHandler, so a client never takes a truncated body for a
// whole one.
func (w *ResponseWriter) Abort() {
	if w.c.werr == nil {
		w.c.werr = errAborted
	}
}

// WriteInterim sends a 1xx informational response (103 Early Hints) with
// the given header lines, each "Name: value\r\n", ahead of the final
// response, and flushes it at once, as net/http's WriteHeader does for
// 1xx codes. Default headers are not added: a handler that wants them
// puts them in lines. It must come before WriteHeader.
func (w *ResponseWriter) WriteInterim(status int, lines []byte) error {
	if w.started || status < 100 || status > 199 || status == 101 {
		return errInterim
	}
	c := w.c
	b := c.out
	if w.proto10 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if text := http.StatusText(status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(status), 10)
	}
	b = append(b, "\r\n"...)
	b = append(b, lines...)
	c.out = append(b, "\r\n"...)
	w.slow = true
	if c.l.opts.WriteTimeout > 0 {
		c.setWriteDeadline(c.clk.now())
	}
	return c.flush()
}

var errInterim = errors.New("fastpath: WriteInterim after WriteHeader or with a non-1xx status")

// Refresh reads the engine's clock again, for a handler that waited
// before answering (a slow upstream): the response's Date and its write
// deadlines then count from now, not from the request's arrival (which
// may be more than WriteTimeout ago). It returns the time read, so that
// the handler need not read the clock again (the conn's clock, clock.go,
// reads one monotonic value where time.Now reads two).
func (w *ResponseWriter) Refresh() time.Time {
	w.c.now = w.c.clk.now()
	w.slow = true
	return w.c.now
}

// Done reads the clock as the response is complete, once per response:
// later calls return the same time. The handler that reports how long an
// upstream took and the entry that logs the request share that reading,
// and the engine counts the wait for the next request from it without
// reading the clock again.
func (w *ResponseWriter) Done() time.Time {
	if !w.ended {
		w.c.now = w.c.clk.now()
		w.ended = true
		w.slow = false
	}
	return w.c.now
}

// Now is the engine's clock as last read: the request's arrival, or the
// last Refresh.
func (w *ResponseWriter) Now() time.Time { return w.c.now }

// ClientGone reports, without blocking or consuming input, whether the
// client has closed or reset its connection: for a handler that waits
// long (a slow upstream) and would rather give up, as net/http's
// background read cancels a request's context. It costs a system call.
// A connection the engine closed (Shutdown past its deadline) is gone.
func (w *ResponseWriter) ClientGone() bool {
	c := w.c
	if c == nil || c.nc == nil {
		return false
	}
	if c.inline {
		// Served inside the idle wait, which holds the read lock.
		return rawsock.Peek(c.inlineFD) == rawsock.Closed
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	err = rc.Read(func(fd uintptr) bool {
		gone = rawsock.Peek(int(fd)) == rawsock.Closed
		return true
	})
	// Closed under us (Shutdown past its deadline) is gone too; a read
	// deadline that passed is not.
	return gone || errors.Is(err, net.ErrClosed)
}
