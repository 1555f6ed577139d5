package wsgi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
)

// lineLogger is a process's stdout or stderr: each line becomes one log
// record tagged with the worker and pid. Overlong lines are split. Lines
// are held (up to maxHeld) until release says whether to log them.
type lineLogger struct {
	level  slog.Level
	stream string

	mu       sync.Mutex
	log      *slog.Logger
	buf      []byte
	last     string
	held     [][]byte
	released bool
	discard  bool
}

const (
	maxLogLine = 512 << 10 // a framed traceback is one line
	maxHeld    = 200
)

func (l *lineLogger) setLogger(log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = log
}

// release logs the held lines (show) or drops them, and logs every line
// from now on.
func (l *lineLogger) release(show bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if show {
		for _, b := range l.held {
			l.out(b)
		}
	}
	l.held = nil
	l.released = true
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.buf = append(l.buf, b...)
			if len(l.buf) >= maxLogLine {
				l.emit()
			}
			break
		}
		l.buf = append(l.buf, b[:i]...)
		l.emit()
		b = b[i+1:]
	}
	return n, nil
}

func (l *lineLogger) emit() {
	line := bytes.TrimRight(l.buf, "\r")
	l.buf = l.buf[:0]
	if t := bytes.TrimSpace(line); len(t) > 0 {
		l.last = string(t)
		if _, text, ok := decodeFrame(t); ok {
			// A traceback's last line says what went wrong.
			text = strings.TrimSpace(text)
			l.last = text[strings.LastIndexByte(text, '\n')+1:]
		}
	}
	if !l.released && l.log == nil || !l.released && len(l.held) < maxHeld {
		l.held = append(l.held, bytes.Clone(line))
		return
	}
	l.out(line)
}

// The adapter sends a multi-line message (a traceback, one write to
// wsgi.errors) as one framed line: frameMark, a kind, a space and the text
// as a JSON string. It becomes one log record whose value keeps its
// newlines, instead of one record per line of a traceback.
const frameMark = "\x1eportico:"

func (l *lineLogger) out(line []byte) {
	if l.log == nil {
		return
	}
	if kind, text, ok := decodeFrame(line); ok {
		if kind == "traceback" {
			l.log.Error("wsgi app error", "traceback", text)
			return
		}
		l.log.Log(context.Background(), l.level, "wsgi worker "+l.stream, "text", text)
		return
	}
	l.log.Log(context.Background(), l.level, "wsgi worker "+l.stream, "line", string(line))
}

// decodeFrame reads a framed message; ok is false for an ordinary line
// (or a malformed frame, which is then logged as it is).
func decodeFrame(line []byte) (kind, text string, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(frameMark))
	if !found {
		return "", "", false
	}
	k, js, found := bytes.Cut(rest, []byte(" "))
	if !found || len(k) == 0 {
		return "", "", false
	}
	if err := json.Unmarshal(js, &text); err != nil {
		return "", "", false
	}
	return string(k), strings.TrimRight(text, "\n"), true
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit()
	}
}

func (l *lineLogger) lastLine() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}
