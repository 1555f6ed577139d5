package cgi

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Output coalescing: body bytes are flushed to the client as soon as the
// script pauses for flushDelay, and at least every maxFlushDelay, so a
// streaming script is seen live while a fast one gets few, full writes (and
// a short response a Content-Length).
const (
	flushDelay    = 2 * time.Millisecond
	maxFlushDelay = 20 * time.Millisecond
)

// bodyResult is how a script's body went.
type bodyResult struct {
	written int64 // body bytes sent to the client
	// excess counts bytes the script wrote past its own Content-Length
	// (at least that many: reading stops at the first of them).
	excess int64
	// writeErr is the error of a write to the client, if one failed.
	writeErr error
}

// copyBody streams the script's output to the client. A read error (or
// EOF) ends the body. declared is the script's Content-Length, -1 if it
// gave none: exactly that many bytes go out, never more, so the bytes of a
// script that breaks its own framing can never be read by the client as
// the start of the next response on the connection.
func (h *Handler) copyBody(w http.ResponseWriter, br *bufio.Reader, p *proc, declared int64) bodyResult {
	var res bodyResult
	rc := http.NewResponseController(w)
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	pending := false
	var lastFlush time.Time
	for {
		if pending {
			_ = p.stdout.SetReadDeadline(time.Now().Add(flushDelay))
		}
		n, err := br.Read(buf)
		if pending {
			_ = p.stdout.SetReadDeadline(time.Time{})
		}
		if declared >= 0 && res.written+int64(n) > declared {
			keep := declared - res.written
			res.excess = int64(n) - keep
			n = int(keep)
			err = errExcess
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				res.writeErr = werr
				return res
			}
			res.written += int64(n)
			if !pending {
				pending = true
				lastFlush = time.Now()
			} else if time.Since(lastFlush) >= maxFlushDelay {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					res.writeErr = ferr
					return res
				}
				lastFlush = time.Now()
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					res.writeErr = ferr
					return res
				}
				pending = false
				continue
			}
			return res // EOF, the excess, or the pipe closed by the supervisor
		}
	}
}

// errExcess ends copyBody at a script's own Content-Length.
var errExcess = errors.New("script output past its Content-Length")

// declaredLength is the Content-Length a script gave (parseHeader checked
// its digits), -1 when it gave none.
func declaredLength(h http.Header) int64 {
	v := h.Get("Content-Length")
	if v == "" {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// lingerTime bounds the lingering close of a connection whose response
// broke off: how long the client's pending bytes are read and dropped, so
// the kernel answers them with nothing rather than a reset that could
// destroy the response still in flight (as net/http's rstAvoidanceDelay).
const lingerTime = 500 * time.Millisecond

// closeConnection ends the client connection after a complete response,
// so nothing that was queued behind it on that connection (a pipelined
// request, the rest of a broken script's output) is ever taken as part of
// the next exchange. HTTP/1: the response is flushed, the connection taken
// over and closed gracefully (FIN, then the client's unread bytes drained
// for lingerTime). HTTP/2 needs nothing: the stream ends on its own framing.
func closeConnection(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor >= 2 {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	_ = conn.Close()
}

func bodyAllowed(method string, status int) bool {
	return method != http.MethodHead && status != http.StatusNoContent && status != http.StatusNotModified
}

// exitCode is the script's exit status, -1 when killed by a signal.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// exitText says how the script ended, for the log: "exit status 1",
// "signal: killed", "signal: CPU time limit exceeded"...
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
