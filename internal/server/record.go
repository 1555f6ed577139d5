package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"portico/internal/accessinfo"
)

// recorder captures the status and size of a response for the access log
// and metrics. It keeps http.Flusher, http.Hijacker and io.ReaderFrom of the
// writer it wraps: losing ReaderFrom would silently lose sendfile.
type recorder struct {
	w           http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	site        string
	siteMetrics *siteMetrics   // the site's, once a site took the request
	route       *routeObserver // the route that served it, nil if none
	siteHeaders [][2]string    // the site's headers, restored on the final response after a 1xx
	interim     bool           // a 1xx was sent
	requestID   string         // the X-Request-ID assigned, "" when off
	start       time.Time
	user        string   // basic-auth user, read before a gate consumes Authorization
	remote      string   // the client address the access log shows
	credential  []string // the request's Authorization values, for restoreCredential

	// What the cache and the proxy report for the access log (cache
	// status, upstream addresses and times), found through Unwrap.
	accessinfo.Record
}

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

var (
	_ http.ResponseWriter = (*recorder)(nil)
	_ http.Flusher        = (*recorder)(nil)
	_ http.Hijacker       = (*recorder)(nil)
	_ io.ReaderFrom       = (*recorder)(nil)
)

func (rec *recorder) reset(w http.ResponseWriter, start time.Time) {
	*rec = recorder{w: w, start: start}
}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader {
		if code >= 200 || code == http.StatusSwitchingProtocols {
			rec.status = code
			rec.wroteHeader = true
			rec.restoreSiteHeaders()
		} else {
			rec.interim = true
		}
	}
	rec.w.WriteHeader(code)
}

// restoreSiteHeaders puts back site headers that a handler dropped with
// the whole header map (httputil.ReverseProxy clears it after relaying a
// 1xx such as 103 Early Hints), so they are on every final response.
//
// Only then: without a 1xx the map is the one the site filled, and a
// field missing from it was removed on purpose (a route's header rule).
func (rec *recorder) restoreSiteHeaders() {
	rec.keepRequestID()
	if !rec.interim || len(rec.siteHeaders) == 0 {
		return
	}
	h := rec.w.Header()
	for _, kv := range rec.siteHeaders {
		if _, ok := h[kv[0]]; !ok {
			h[kv[0]] = []string{kv[1]}
		}
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.status = http.StatusOK
		rec.wroteHeader = true
		rec.restoreSiteHeaders()
	}
	n, err := rec.w.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// ReadFrom lets net/http use sendfile for files copied to the response.
func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !rec.wroteHeader {
		rec.status = http.StatusOK
		rec.wroteHeader = true
		rec.restoreSiteHeaders()
	}
	var n int64
	var err error
	if rf, ok := rec.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rec.w}, src)
	}
	rec.bytes += n
	return n, err
}

func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.status = http.StatusOK
		rec.wroteHeader = true
		rec.restoreSiteHeaders()
	}
	if f, ok := rec.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rec.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := h.Hijack()
	if err == nil && !rec.wroteHeader {
		rec.status = http.StatusSwitchingProtocols
		rec.wroteHeader = true
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// writerOnly hides ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }
