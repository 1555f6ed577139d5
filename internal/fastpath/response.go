package fastpath

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"portico/internal/accessinfo"
)

// ResponseWriter composes one response of the fast path. A handler calls,
// in this order: WriteHeader once; any AddHeader*; then at most one of
// Write (any number of times) or SendFile; or nothing more for a response
// without a body. The engine adds the status line, Date, the default
// headers (SetDefaultHeaders) the handler did not set itself, and
// Connection where net/http would send it. The handler must frame its
// response: a Content-Length header line for every status that has a body.
//
// Output is buffered per connection and flushed when the connection has no
// further pipelined request waiting, when the buffer fills, or before a
// file is sent.
type ResponseWriter struct {
	c *conn

	status      int
	started     bool // WriteHeader was called
	headerDone  bool // the empty line is written
	head        bool // the request is HEAD: bodies are discarded
	keepAlive   bool
	proto10     bool
	headerStart int // offset in c.out of the handler's header lines
	bytes       int64
	defaults    [][2]string
	filter      HeaderFilter
	lr          io.LimitedReader
	slow        bool   // wrote to the socket directly: the clock needs a fresh read
	ended       bool   // Done read the clock at the response's end
	hidden      string // a request field RawHeader leaves out (HideRequestField)

	// What a cache or proxy handler reports for the access log.
	accessinfo.Record
}

// Status returns the status code WriteHeader was called with, 0 before.
func (w *ResponseWriter) Status() int { return w.status }

// BytesWritten returns the body bytes written so far, as net/http's
// ResponseWriter.Write would have counted them (for HEAD requests the
// body is discarded but still counted).
func (w *ResponseWriter) BytesWritten() int64 { return w.bytes }

// SetDefaultHeaders sets header fields (canonical name, value) that are
// written after the handler's own, unless the handler wrote a field of the
// same name: a site's configured headers, which net/http's path assigns
// before the handler, which may then replace them. The slice is read when
// the header ends; it is not copied and must not change meanwhile.
func (w *ResponseWriter) SetDefaultHeaders(kv [][2]string) { w.defaults = kv }

// HeaderFilter edits the header fields of a response just before they are
// sent: route-level header rules. FilterHeader is called once per final
// response, after the handler's fields and the default headers; it may
// call AddHeader, ReplaceHeader and DelHeader (and Request, to see what is
// answered), nothing else.
type HeaderFilter interface {
	FilterHeader(w *ResponseWriter)
}

// SetHeaderFilter sets the filter of this response (nil: none). It is
// reset for every request.
func (w *ResponseWriter) SetHeaderFilter(f HeaderFilter) { w.filter = f }

// Request returns the request being answered (valid as long as the
// strings of the request passed to ServeFast).
func (w *ResponseWriter) Request() *Request { return &w.c.req }

// DelHeader removes every field named name (case-insensitively) that the
// handler or the defaults wrote. For a HeaderFilter only: framing fields
// (Content-Length, Transfer-Encoding) must be left alone.
func (w *ResponseWriter) DelHeader(name string) {
	if name == "" {
		return
	}
	b := w.c.out
	i := w.headerStart
	for i < len(b) {
		end := bytes.IndexByte(b[i:], '\n')
		if end < 0 {
			break
		}
		end += i + 1
		line := b[i:end]
		if len(line) > len(name) && line[len(name)] == ':' && line[0]|0x20 == name[0]|0x20 && equalFoldBytes(line[:len(name)], name) {
			b = append(b[:i], b[end:]...)
			continue
		}
		i = end
	}
	w.c.out = b
}

// ReplaceHeader sets the field name to value, replacing every field of
// that name written so far. For a HeaderFilter only.
func (w *ResponseWriter) ReplaceHeader(name, value string) {
	w.DelHeader(name)
	w.AddHeader(name, value)
}

// WriteHeader starts the response with a status code.
func (w *ResponseWriter) WriteHeader(status int) {
	if w.started {
		return
	}
	w.started = true
	w.status = status
	b := w.c.out
	if w.proto10 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	switch status {
	case 200:
		b = append(b, "200 OK\r\n"...)
	case 206:
		b = append(b, "206 Partial Content\r\n"...)
	case 304:
		b = append(b, "304 Not Modified\r\n"...)
	default:
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		if text := http.StatusText(status); text != "" {
			b = append(b, text...)
		} else {
			// As net/http for a code it has no name for (a script's
			// "Status: 299").
			b = append(b, "status code "...)
			b = strconv.AppendInt(b, int64(status), 10)
		}
		b = append(b, "\r\n"...)
	}
	b = append(b, "Date: "...)
	b = append(b, httpDate(w.c.now)...)
	b = append(b, "\r\n"...)
	w.headerStart = len(b)
	w.c.out = b
}

// AddHeader adds one header line.
func (w *ResponseWriter) AddHeader(name, value string) {
	b := append(w.c.out, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	w.c.out = append(b, "\r\n"...)
}

// AddHeaderLines adds pre-rendered header lines, each "Name: value\r\n"
// (static.Entry.Head).
func (w *ResponseWriter) AddHeaderLines(lines []byte) {
	w.c.out = append(w.c.out, lines...)
}

// endHeader writes the default headers, Connection and the empty line.
func (w *ResponseWriter) endHeader() {
	if w.headerDone {
		return
	}
	w.headerDone = true
	if w.keepAlive && w.c.l.closing.Load() {
		w.keepAlive = false // shutting down: "Connection: close", as net/http
	}
	b := w.c.out
	for _, kv := range w.defaults {
		if !hasField(b[w.headerStart:], kv[0]) {
			b = append(b, kv[0]...)
			b = append(b, ": "...)
			b = append(b, kv[1]...)
			b = append(b, "\r\n"...)
		}
	}
	if id := w.c.req.RequestID; id != "" {
		// The server's id, replacing any a handler copied (a cached
		// response keeps the id of the request that filled it).
		w.c.out = b
		w.DelHeader("X-Request-Id")
		w.AddHeader("X-Request-Id", id)
		b = w.c.out
	}
	if w.filter != nil {
		w.c.out = b
		w.filter.FilterHeader(w)
		b = w.c.out
	}
	// As net/http: "Connection: close" to an HTTP/1.1 client that asked
	// for it, "Connection: keep-alive" to an HTTP/1.0 client that asked
	// for keep-alive; nothing otherwise.
	if w.proto10 {
		if w.keepAlive {
			b = append(b, "Connection: keep-alive\r\n"...)
		}
	} else if !w.keepAlive {
		b = append(b, "Connection: close\r\n"...)
	}
	w.c.out = append(b, "\r\n"...)
}

// hasField reports whether header lines hold a field named name
// (case-insensitively).
func hasField(lines []byte, name string) bool {
	for len(lines) > len(name) {
		if lines[len(name)] == ':' && lines[0]|0x20 == name[0]|0x20 && equalFoldBytes(lines[:len(name)], name) {
			return true
		}
		i := bytes.IndexByte(lines, '\n')
		if i < 0 {
			return false
		}
		lines = lines[i+1:]
	}
	return false
}

func equalFoldBytes(b []byte, s string) bool {
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// errNoHeader is a programming error of a handler: body before header.
var errNoHeader = errors.New("fastpath: body written before WriteHeader")

// Write sends body bytes. Small writes are buffered with the header.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if !w.started {
		return 0, errNoHeader
	}
	w.endHeader()
	w.bytes += int64(len(p))
	if w.head {
		return len(p), nil
	}
	c := w.c
	if len(c.out)+len(p) <= outFlushSize {
		c.out = append(c.out, p...)
		return len(p), nil
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	w.slow = true
	n, err := c.write(p)
	if err != nil {
		c.werr = err
	}
	return n, err
}

// SendFile sends n bytes of f from its current offset, with sendfile when
// the connection allows it. The caller keeps ownership of f.
func (w *ResponseWriter) SendFile(f *os.File, n int64) (int64, error) {
	if !w.started {
		return 0, errNoHeader
	}
	w.endHeader()
	if w.head {
		w.bytes += n
		return n, nil
	}
	c := w.c
	// A file of more than one slice: the header is sent with MSG_MORE,
	// so that it leaves in one segment with the file's start (nginx's
	// tcp_nopush, lighttpd's TCP_CORK), and the slices go out with a
	// yield between them (below). Measured on Linux 6.18 over loopback,
	// 64 clients of a 1 MiB file, the client on the other core (a bare Go
	// server, then portico):
	//   - header alone, slices back to back (portico before): 1.7-2.9k
	//     req/s, lighttpd 5.5-6.1k. The sender queued the whole MiB at
	//     once; each window update of the client pushed more of it, so
	//     the client's CPU did the transmitting, and about one segment
	//     per response went out twice (a tail loss probe; nstat).
	//   - MSG_MORE alone: 2.1-2.5k, at 4x the sender's CPU; the yield
	//     alone: 2.0-2.1k.
	//   - both: 4.1-5.5k (portico: 0.89x lighttpd's req/s the same hour),
	//     retransmissions 0.02 per response, 180-230 us of the sender's
	//     CPU per MiB (lighttpd: 150-170).
	// A file of one slice gets neither: MSG_MORE alone costs (256 KiB
	// files: 12-14k req/s with it, 19-23k without).
	flush := c.flush
	if n > sendfileSlice {
		flush = c.flushMore
	}
	if err := flush(); err != nil {
		return 0, err
	}
	w.slow = true
	// In slices, each with a fresh write deadline: a client reading
	// steadily is never cut, one that stops is.
	var written int64
	var err error
	for written < n && err == nil {
		chunk := min(n-written, sendfileSlice)
		if c.l.opts.WriteTimeout > 0 {
			c.setWriteDeadline(c.clk.now())
		}
		w.lr = io.LimitedReader{R: f, N: chunk}
		var k int64
		if rf, ok := c.nc.(io.ReaderFrom); ok {
			k, err = rf.ReadFrom(&w.lr)
		} else {
			k, err = io.Copy(writerOnly{c.nc}, &w.lr)
		}
		written += k
		if err == nil && k < chunk {
			break
		}
		if written < n {
			// The other connections' turn, as an event loop's: what
			// this one queued goes out while they run.
			runtime.Gosched()
		}
	}
	w.lr.R = nil
	w.bytes += written
	if err == nil && written < n {
		err = io.ErrUnexpectedEOF // the file shrank: the framing is broken
	}
	if err != nil {
		c.werr = err
	}
	return written, err
}

// sendfileSlice is how much of a file goes out per write deadline and
// per turn. For the 1 MiB file above: 512 KiB 4.3-5.5k req/s, steadiest;
// 256 KiB 3.8-4.6k; 128 KiB 2.8-3.1k; 640 and 768 KiB 4.3-7.5k, from
// round to round; 896 KiB (a 128 KiB tail) 2.0-2.2k.
const sendfileSlice = 512 << 10

// finish ends a response the handler left without a body.
func (w *ResponseWriter) finish() {
	if w.started {
		w.endHeader()
	}
}

// Date header values, cached per second.
type dateValue struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[dateValue]

// httpDate returns now in the format of the Date header (http.TimeFormat).
// The returned bytes are shared and must not be modified.
func httpDate(now time.Time) []byte {
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &dateValue{sec: sec, b: now.UTC().AppendFormat(make([]byte, 0, 29), http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}
