package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"portico/internal/accessinfo"
)

// accessLog writes one line per request in Combined Log Format or JSON.
// Lines are appended to a pooled buffer and written through a bufio.Writer
// flushed every flushEvery, so logging costs no syscall per request.
type accessLog struct {
	json   bool
	mu     sync.Mutex
	out    *bufio.Writer
	closer io.Closer // the file, when the log owns one
	stop   chan struct{}
	done   chan struct{}
	stamp  atomic.Pointer[timeStamp]
	// closed: Close has flushed and closed the output (under mu); a
	// request that ends later (a handler still running when shutdown
	// closed its tree) writes nothing.
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

type timeStamp struct {
	sec  int64
	text string // "[24/Nov/2026:06:03:22 +0000]" or RFC 3339 for JSON
}

const flushEvery = 200 * time.Millisecond

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// openAccessLog opens dest ("off", "stdout", "stderr" or a path); nil for off.
func openAccessLog(dest, format string, stdout, stderr io.Writer) (*accessLog, error) {
	var w io.Writer
	var c io.Closer
	switch dest {
	case "off", "":
		return nil, nil
	case "stdout":
		w = stdout
	case "stderr":
		w = stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		w, c = f, f
	}
	l := &accessLog{json: format == "json", out: bufio.NewWriterSize(w, 64<<10), closer: c,
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushLoop()
	return l, nil
}

func (l *accessLog) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			_ = l.out.Flush()
			l.mu.Unlock()
		case <-l.stop:
			return
		}
	}
}

// Close flushes and closes the log (once; later lines are dropped).
func (l *accessLog) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		l.closed = true
		err := l.out.Flush()
		if l.closer != nil {
			if cerr := l.closer.Close(); err == nil {
				err = cerr
			}
		}
		l.closeErr = err
	})
	return l.closeErr
}

func (l *accessLog) timeText(now time.Time) string {
	sec := now.Unix()
	if ts := l.stamp.Load(); ts != nil && ts.sec == sec {
		return ts.text
	}
	var text string
	if l.json {
		text = now.Format(time.RFC3339)
	} else {
		text = now.Format("[02/Jan/2006:15:04:05 -0700]")
	}
	l.stamp.Store(&timeStamp{sec: sec, text: text})
	return text
}

// logLine is what one access-log line says about a request. Both engines
// (net/http and the fast path) fill it, so their lines cannot drift apart.
// It holds strings that point into the request; write it before returning.
type logLine struct {
	remoteAddr, user, site, host, method, uri, proto, referer, userAgent string
	requestID                                                            string // "" when request ids are off
	up                                                                   *accessinfo.Record
	status                                                               int
	bytes                                                                int64
	start, now                                                           time.Time
}

// log writes the line for one finished net/http request.
func (l *accessLog) log(r *http.Request, rec *recorder, now time.Time) {
	l.write(&logLine{
		remoteAddr: rec.remote, user: rec.user, site: rec.site, host: r.Host,
		method: r.Method, uri: r.RequestURI, proto: r.Proto,
		referer: r.Header.Get("Referer"), userAgent: r.Header.Get("User-Agent"),
		status: rec.status, bytes: rec.bytes, start: rec.start, now: now,
		requestID: rec.requestID, up: &rec.Record,
	})
}

// write formats ln in the log's format and appends it to the log.
func (l *accessLog) write(ln *logLine) {
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	host, _, err := net.SplitHostPort(ln.remoteAddr)
	if err != nil {
		host = ln.remoteAddr
	}
	user := ln.user
	if user == "" {
		user = "-"
	}
	if l.json {
		b = append(b, `{"time":"`...)
		b = append(b, l.timeText(ln.now)...)
		b = append(b, `","remote_addr":`...)
		b = appendJSONString(b, host)
		b = append(b, `,"user":`...)
		b = appendJSONString(b, user)
		b = append(b, `,"site":`...)
		b = appendJSONString(b, ln.site)
		b = append(b, `,"host":`...)
		b = appendJSONString(b, ln.host)
		b = append(b, `,"method":`...)
		b = appendJSONString(b, ln.method)
		b = append(b, `,"uri":`...)
		b = appendJSONString(b, ln.uri)
		b = append(b, `,"proto":`...)
		b = appendJSONString(b, ln.proto)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(ln.status), 10)
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, ln.bytes, 10)
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, float64(ln.now.Sub(ln.start).Microseconds())/1000, 'f', 3, 64)
		b = append(b, `,"referer":`...)
		b = appendJSONString(b, ln.referer)
		b = append(b, `,"user_agent":`...)
		b = appendJSONString(b, ln.userAgent)
		if ln.requestID != "" {
			b = append(b, `,"request_id":`...)
			b = appendJSONString(b, ln.requestID)
		}
		b = appendUpstreamJSON(b, ln.up)
		b = append(b, "}\n"...)
	} else {
		b = append(b, host...)
		b = append(b, " - "...)
		b = appendCLF(b, user)
		b = append(b, ' ')
		b = append(b, l.timeText(ln.now)...)
		b = append(b, ` "`...)
		b = appendCLF(b, ln.method)
		b = append(b, ' ')
		b = appendCLF(b, ln.uri)
		b = append(b, ' ')
		b = appendCLF(b, ln.proto)
		b = append(b, `" `...)
		b = strconv.AppendInt(b, int64(ln.status), 10)
		b = append(b, ' ')
		if ln.bytes == 0 {
			b = append(b, '-')
		} else {
			b = strconv.AppendInt(b, ln.bytes, 10)
		}
		b = append(b, ` "`...)
		b = appendCLFOrDash(b, ln.referer)
		b = append(b, `" "`...)
		b = appendCLFOrDash(b, ln.userAgent)
		b = append(b, '"')
		if ln.requestID != "" {
			// nginx's habit: "$request_id" after the combined fields.
			b = append(b, ` "`...)
			b = appendCLF(b, ln.requestID)
			b = append(b, '"')
		}
		b = appendUpstreamCLF(b, ln.up)
		b = append(b, '\n')
	}
	l.mu.Lock()
	if !l.closed {
		_, _ = l.out.Write(b)
	}
	l.mu.Unlock()
	*bp = b
	linePool.Put(bp)
}

const hexDigits = "0123456789ABCDEF"

// appendCLF appends s escaped the way nginx escapes log fields: quotes,
// backslashes, control and non-ASCII bytes become \xHH, so a request cannot
// forge log lines.
func appendCLF(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

func appendCLFOrDash(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendCLF(b, s)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
