package fastcgi

import (
	"bytes"
	"strings"
)

// maxStderrLine bounds one logged line of a script's stderr.
const maxStderrLine = 4 << 10

// stderrLog logs the FCGI_STDERR content of one script, one log line per
// line of text (php-fpm sends PHP's warnings there), each at most
// maxStderrLine bytes, tagged with the script.
type stderrLog struct {
	h    *Handler
	name string
}

func (s stderrLog) log(b []byte) {
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
		s.h.log.Warn("fastcgi: stderr", "script", s.name, "line", strings.ToValidUTF8(text, "?"))
	}
}
