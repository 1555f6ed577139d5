package fastcgi

import (
	"bytes"
	"strings"
)

// maxStderrLine bounds one logged line of a script's stderr.
const maxStderrLine = 4 << 10

// stderrLogger returns the function that logs FCGI_STDERR content of the
// script name, one log line per line of text (php-fpm sends PHP's
// warnings there), each at most maxStderrLine bytes.
func (h *Handler) stderrLogger(name string) func([]byte) {
	return func(b []byte) {
		for len(b) > 0 {
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, b = b[:i], b[i+1:]
			} else {
				b = nil
			}
			line = bytes.TrimRight(line, "\r")
			if len(line) == 0 {
				continue
			}
			text := string(line[:min(len(line), maxStderrLine)])
			h.log.Warn("fastcgi: stderr", "script", name, "line", strings.ToValidUTF8(text, "?"))
		}
	}
}
