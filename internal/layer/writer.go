package layer

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// headerWriter edits the header map of the wrapped ResponseWriter once,
// when the final status is written (or implied by the first Write, Flush
// or ReadFrom). It keeps http.Flusher, http.Hijacker and io.ReaderFrom:
// losing ReaderFrom would silently lose sendfile, losing Flusher
// streaming.
type headerWriter struct {
	w    http.ResponseWriter
	h    *chained
	r    Request
	done bool
}

// SetMatchPath makes the rules match this response as if path had been
// requested: an SPA's index answer counts as its index file.
func (hw *headerWriter) SetMatchPath(path string) {
	hw.r = answerRequest{hw.r, path}
}

// answerRequest is a Request whose Path is the answer's, not the request's.
type answerRequest struct {
	Request
	path string
}

func (q answerRequest) Path() string { return q.path }

var (
	_ http.ResponseWriter = (*headerWriter)(nil)
	_ http.Flusher        = (*headerWriter)(nil)
	_ http.Hijacker       = (*headerWriter)(nil)
	_ io.ReaderFrom       = (*headerWriter)(nil)
)

func (hw *headerWriter) Header() http.Header { return hw.w.Header() }

// final edits the header for a final response with status.
func (hw *headerWriter) final(status int) {
	if hw.done {
		return
	}
	hw.done = true
	hw.h.editHeader(hw.r, status, httpHeader(hw.w.Header()))
}

func (hw *headerWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		hw.final(code)
	}
	hw.w.WriteHeader(code)
}

func (hw *headerWriter) Write(b []byte) (int, error) {
	hw.final(http.StatusOK)
	return hw.w.Write(b)
}

// ReadFrom keeps sendfile.
func (hw *headerWriter) ReadFrom(src io.Reader) (int64, error) {
	hw.final(http.StatusOK)
	if rf, ok := hw.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{hw.w}, src)
}

func (hw *headerWriter) Flush() {
	hw.final(http.StatusOK)
	if f, ok := hw.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (hw *headerWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := hw.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (hw *headerWriter) Unwrap() http.ResponseWriter { return hw.w }

// writerOnly hides ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }
