package cgi

import (
	"bufio"
	"errors"
	"net/http"
	"os"
	"os/exec"
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

// copyBody streams the script's output to the client. It returns the error
// of a write to the client, nil otherwise (a read error ends the body).
func (h *Handler) copyBody(w http.ResponseWriter, br *bufio.Reader, p *proc) error {
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
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if !pending {
				pending = true
				lastFlush = time.Now()
			} else if time.Since(lastFlush) >= maxFlushDelay {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return ferr
				}
				lastFlush = time.Now()
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return ferr
				}
				pending = false
				continue
			}
			return nil // EOF, or the pipe closed by the supervisor
		}
	}
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
