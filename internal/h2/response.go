package h2

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"portico/internal/httpnum"
)

// bufMax is how much of a body a response keeps before its first frame:
// a handler that writes less and returns gets a Content-Length (and its
// headers and body leave together).
const bufMax = 4 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufMax); return &b }}

// responseWriter is a stream's http.ResponseWriter. Its methods run on
// the handler's goroutine; what reaches the connection is done under
// the connection's mu.
type responseWriter struct {
	st          *stream
	header      http.Header
	status      int
	wroteHeader bool // the status is chosen
	sentHeader  bool // the HEADERS frame is out
	done        bool
	buf         *[]byte
	written     int64 // body bytes the handler wrote
	declared    int64 // the handler's Content-Length, or -1 once parsed
	parsedCL    bool
}

func (rw *responseWriter) Header() http.Header {
	if rw.header == nil {
		rw.header = make(http.Header, 8)
	}
	return rw.header
}

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader || rw.done {
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational answers (103 Early Hints) go out at once.
		c := rw.st.c
		c.mu.Lock()
		if !rw.st.reset && !c.closed {
			rw.writeHeadersLocked(code, rw.header, false)
			c.flushLocked()
		}
		c.mu.Unlock()
		return
	}
	rw.wroteHeader = true
	rw.status = code
}

func (rw *responseWriter) Write(p []byte) (int, error) { return rw.write(p, "") }

func (rw *responseWriter) WriteString(s string) (int, error) { return rw.write(nil, s) }

// write takes the body from p, or from s when p is nil.
func (rw *responseWriter) write(p []byte, s string) (int, error) {
	if rw.done {
		return 0, http.ErrHandlerTimeout
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	n := len(p)
	if p == nil {
		n = len(s)
	}
	if !bodyAllowed(rw.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if !rw.parsedCL {
		rw.parseDeclared()
	}
	if rw.declared >= 0 && rw.written+int64(n) > rw.declared {
		return 0, http.ErrContentLength
	}
	rw.written += int64(n)
	if rw.st.req.Method == http.MethodHead {
		return n, nil
	}
	if rw.buf == nil {
		rw.buf = bufPool.Get().(*[]byte)
	}
	if len(*rw.buf)+n <= bufMax {
		if p == nil {
			*rw.buf = append(*rw.buf, s...)
		} else {
			*rw.buf = append(*rw.buf, p...)
		}
		return n, nil
	}
	if p == nil {
		p = []byte(s)
	}
	c := rw.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := rw.commitLocked(false, p); err != nil {
		return 0, err
	}
	if err := rw.sendDataLocked(p, false); err != nil {
		return 0, err
	}
	// What goes beyond the buffer goes out now, as with net/http, not
	// when the handler returns, flushes or writes 64 KiB more: a
	// full-duplex handler that answers one message and waits for the
	// next must not sit on its answer.
	c.scheduleFlushLocked()
	return n, nil
}

func (rw *responseWriter) parseDeclared() {
	rw.parsedCL = true
	rw.declared = -1
	if v := rw.header["Content-Length"]; len(v) == 1 {
		if n, ok := httpnum.Digits(v[0]); ok {
			rw.declared = n
		}
	}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status < 200 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// Flush sends the headers and what is buffered now.
func (rw *responseWriter) Flush() { rw.FlushError() }

func (rw *responseWriter) FlushError() error {
	if rw.done {
		return http.ErrHandlerTimeout
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	c := rw.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := rw.commitLocked(false, nil); err != nil {
		return err
	}
	c.flushLocked()
	if c.writeErr != nil {
		return c.writeErr
	}
	return nil
}

func (rw *responseWriter) SetReadDeadline(t time.Time) error {
	rw.st.setDeadline(true, t)
	return nil
}

func (rw *responseWriter) SetWriteDeadline(t time.Time) error {
	rw.st.setDeadline(false, t)
	return nil
}

// EnableFullDuplex: HTTP/2 always is.
func (rw *responseWriter) EnableFullDuplex() error { return nil }

// commitLocked sends the HEADERS frame, if not sent, and the buffered
// body. end ends the stream with them (the handler has returned); next
// is the body about to follow them, unbuffered, for sniffing.
func (rw *responseWriter) commitLocked(end bool, next []byte) error {
	st := rw.st
	c := st.c
	if st.reset || c.closed {
		return errStreamReset
	}
	var buf []byte
	if rw.buf != nil {
		buf = *rw.buf
	}
	if !rw.sentHeader {
		h := rw.header
		if end && bodyAllowed(rw.status) && (len(buf) > 0 || st.req.Method != http.MethodHead) {
			if _, ok := h["Content-Length"]; !ok && h.Get("Transfer-Encoding") == "" {
				h = rw.Header()
				h["Content-Length"] = []string{strconv.Itoa(len(buf))}
			}
		}
		// As net/http: sniff the first bytes, unless the handler named
		// a type (even empty) or an encoding (a gzip body is not
		// application/x-gzip to the client).
		sniff := buf
		if len(sniff) == 0 {
			sniff = next
		}
		if _, ok := h["Content-Type"]; !ok && len(sniff) > 0 && bodyAllowed(rw.status) && h.Get("Content-Encoding") == "" {
			h = rw.Header()
			h["Content-Type"] = []string{http.DetectContentType(sniff)}
		}
		rw.sentHeader = true
		rw.writeHeadersLocked(rw.status, h, end && len(buf) == 0)
		if end && len(buf) == 0 {
			return nil
		}
	}
	if len(buf) > 0 || end {
		err := rw.sendDataLocked(buf, end)
		if rw.buf != nil {
			*rw.buf = (*rw.buf)[:0]
		}
		return err
	}
	return nil
}

// finish ends the response when the handler returns: the rest of the
// body, then trailers if the handler declared any.
func (rw *responseWriter) finish() {
	st := rw.st
	c := st.c
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	trailers := rw.trailers()
	c.mu.Lock()
	if len(trailers) == 0 {
		rw.commitLocked(true, nil)
	} else if rw.commitLocked(false, nil) == nil {
		rw.writeHeadersLocked(0, trailers, true)
	}
	c.scheduleFlushLocked()
	closeAfter := rw.header["Connection"]
	c.mu.Unlock()
	rw.done = true
	if rw.buf != nil {
		// Emptied first: a reset stream leaves its body unsent here,
		// and the next response must not begin with it.
		*rw.buf = (*rw.buf)[:0]
		bufPool.Put(rw.buf)
		rw.buf = nil
	}
	for _, v := range closeAfter {
		if strings.EqualFold(v, "close") {
			go c.goAwayGracefully()
		}
	}
}

// trailers collects the trailer fields the handler set: those named in
// its Trailer header, and those with http.TrailerPrefix.
func (rw *responseWriter) trailers() http.Header {
	var t http.Header
	for _, k := range declaredTrailers(rw.header) {
		if vs, ok := rw.header[k]; ok {
			if t == nil {
				t = http.Header{}
			}
			t[k] = vs
		}
	}
	for k, vs := range rw.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if t == nil {
				t = http.Header{}
			}
			t[http.CanonicalHeaderKey(k[len(http.TrailerPrefix):])] = vs
		}
	}
	return t
}

// declaredTrailers lists the names h's Trailer header announces.
func declaredTrailers(h http.Header) []string {
	var names []string
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(textproto.TrimString(k)); k != "" && httpguts.ValidTrailerHeader(k) {
				names = append(names, k)
			}
		}
	}
	return names
}

// sendDataLocked sends p as DATA frames as the flow-control windows
// allow, waiting (with what is pending flushed) when they are shut.
func (rw *responseWriter) sendDataLocked(p []byte, end bool) error {
	st := rw.st
	c := st.c
	for {
		if st.reset || c.closed {
			return errStreamReset
		}
		if len(p) == 0 {
			if end {
				c.fw.WriteData(st.id, true, nil)
			}
			return nil
		}
		n := int64(len(p))
		n = min(n, int64(c.peerMaxFrame), st.sendWindow, c.sendWindow)
		if n <= 0 {
			now := time.Now()
			if !st.writeDeadline.IsZero() && !now.Before(st.writeDeadline) {
				return errTimeout
			}
			if wt := c.srv.WriteTimeout; wt > 0 {
				// A client that reads nothing sends no WINDOW_UPDATE,
				// and the socket, never written to, never times out:
				// the wait for window has the write timeout too.
				if st.windowDeadline.IsZero() {
					st.windowDeadline = now.Add(wt)
					st.armDeadlineLocked()
				} else if !now.Before(st.windowDeadline) {
					c.resetStreamLocked(st.id, http2.ErrCodeCancel)
					return errTimeout
				}
			}
			if len(c.out) > 0 {
				c.flushLocked()
				continue
			}
			c.cond.Wait()
			continue
		}
		st.windowDeadline = time.Time{} // the client is reading
		last := end && n == int64(len(p))
		c.fw.WriteData(st.id, last, p[:n])
		st.sendWindow -= n
		c.sendWindow -= n
		p = p[n:]
		if len(c.out) > maxPendingOut {
			c.flushLocked()
			if c.writeErr != nil {
				return c.writeErr
			}
		}
		if last {
			return nil
		}
	}
}

// writeHeadersLocked encodes a header block (status 0: trailers) and
// sends it as HEADERS and CONTINUATION frames.
func (rw *responseWriter) writeHeadersLocked(status int, h http.Header, end bool) {
	st := rw.st
	c := st.c
	c.hbuf.Reset()
	var declared []string // trailer names, which the header block leaves out
	if status != 0 {
		c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
		declared = declaredTrailers(h)
	}
	for k, vs := range h {
		name := lowerName(k)
		if connectionHeaders[name] || name == "te" || strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		if len(declared) > 0 && slices.Contains(declared, k) {
			continue
		}
		if status != 0 && name == "content-length" && !bodyAllowed(status) {
			continue
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue
			}
			c.henc.WriteField(hpack.HeaderField{Name: name, Value: v})
		}
	}
	if status >= 200 {
		if _, ok := h["Date"]; !ok {
			c.henc.WriteField(hpack.HeaderField{Name: "date", Value: c.srv.httpDate()})
		}
	}
	block := c.hbuf.Bytes()
	max := int(c.peerMaxFrame)
	first := true
	for first || len(block) > 0 {
		n := min(len(block), max)
		frag := block[:n]
		block = block[n:]
		if first {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: st.id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			c.fw.WriteContinuation(st.id, len(block) == 0, frag)
		}
	}
}

var statusTexts [600]string

func statusText(code int) string {
	if code < len(statusTexts) {
		if s := statusTexts[code]; s != "" {
			return s
		}
	}
	return strconv.Itoa(code)
}

// commonNames maps the canonical form of frequent header names to their
// HTTP/2 (lower-case) form without an allocation.
var commonNames = map[string]string{}

func init() {
	for i := 100; i < len(statusTexts); i++ {
		statusTexts[i] = strconv.Itoa(i)
	}
	for _, k := range []string{
		"Accept-Ranges", "Age", "Allow", "Alt-Svc", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location",
		"Content-Range", "Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires",
		"Last-Modified", "Link", "Location", "Referrer-Policy", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Trailer", "Vary", "Via", "Www-Authenticate",
		"X-Content-Type-Options", "X-Frame-Options", "X-Request-Id", "X-Cache", "X-Cache-Status",
		"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te",
	} {
		commonNames[k] = strings.ToLower(k)
	}
}

func lowerName(k string) string {
	if v, ok := commonNames[k]; ok {
		return v
	}
	return strings.ToLower(k)
}

// The Date header, formatted once a second.
type dateText struct {
	sec  int64
	text string
}

func (s *Server) httpDate() string {
	now := time.Now()
	if d := s.date.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateText{sec: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.text
}
