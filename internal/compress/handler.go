package compress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"portico/internal/config"
)

// Handler compresses the responses of the handler it wraps, on net/http.
//
// Each response gets Vary: Accept-Encoding. It is compressed, with the
// encoding Negotiate picks for the request, unless one of these holds:
// the request has Range; the status is 1xx, 204, 206 or 304; the response
// has a Content-Encoding or Content-Range already, Cache-Control:
// no-transform, no Content-Type or one outside the route's types; or its
// Content-Length is below the minimum size. A response without
// Content-Length is held back until the minimum size is reached, the
// handler flushes, or it ends (then it is sent as it is): a stream is
// never buffered past a flush, and each flush flushes the encoder, so
// every event of a text/event-stream reaches the client when written.
//
// A compressed response loses Content-Length and Accept-Ranges, and its
// strong ETag becomes weak (W/"..."): the bytes differ from the
// identity's, while If-None-Match (weak comparison) still matches.
type Handler struct {
	next    http.Handler
	order   []Encoding
	minSize int64
	types   typeSet
	codec   *Codec
	bufs    sync.Pool // *[]byte for ReadFrom copies
}

var _ http.Handler = (*Handler)(nil)

// Settings are a route's compression, built once from its config and
// shared by the route's Handler, Normalize and static handler.
type Settings struct {
	Order   []Encoding
	MinSize int64
	types   typeSet
	Codec   *Codec
}

// NewSettings builds the settings of cfg, which config has validated.
func NewSettings(cfg config.Compression) (*Settings, error) {
	s := &Settings{MinSize: int64(cfg.MinSize), types: newTypeSet(cfg.Types), Codec: NewCodec(cfg.Level)}
	for _, name := range cfg.Encodings {
		e, ok := ParseEncoding(name)
		if !ok {
			return nil, fmt.Errorf("compress: unknown encoding %q", name)
		}
		s.Order = append(s.Order, e)
	}
	if len(s.Order) == 0 {
		return nil, fmt.Errorf("compress: no encodings")
	}
	return s, nil
}

// Compressible reports whether a response of this Content-Type is
// compressed.
func (s *Settings) Compressible(contentType string) bool { return s.types.match(contentType) }

// Negotiate picks the encoding for a request's Accept-Encoding value.
func (s *Settings) Negotiate(ae string) Encoding { return Negotiate(ae, s.Order) }

// New returns next with its responses compressed by s.
func New(s *Settings, next http.Handler) *Handler {
	h := &Handler{next: next, order: s.Order, minSize: s.MinSize, types: s.types, codec: s.Codec}
	h.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	return h
}

// Close releases nothing: the handler holds only pooled memory. It is
// here to give every handler one shape.
func (h *Handler) Close(context.Context) error { return nil }

// Unwrap returns the wrapped handler.
func (h *Handler) Unwrap() http.Handler { return h.next }

// ServeHTTP serves r through next, compressing its response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	enc := None
	if _, hasRange := r.Header["Range"]; !hasRange {
		enc = Negotiate(headerValue(r.Header["Accept-Encoding"]), h.order)
	}
	cw := &responseWriter{h: h, w: w, enc: enc, head: r.Method == http.MethodHead}
	h.next.ServeHTTP(cw, r)
	// Not deferred: after a panic nothing may be written (the server
	// answers 500 if no status went out, or cuts the response).
	cw.finish()
}

// headerValue joins a field's lines into one list value.
func headerValue(v []string) string {
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	return strings.Join(v, ",")
}

type writerState uint8

const (
	stateInit     writerState = iota // no final status yet
	statePass                        // sending as is
	stateHold                        // compressible, length unknown: holding bytes below minSize
	stateCompress                    // compressing
	stateHijacked
)

// responseWriter is Handler's http.ResponseWriter. It keeps
// http.Flusher, http.Hijacker and io.ReaderFrom (sendfile when the
// response is not compressed).
type responseWriter struct {
	h      *Handler
	w      http.ResponseWriter
	enc    Encoding
	head   bool
	state  writerState
	status int
	held   []byte
	ew     encoder
}

var (
	_ http.Flusher    = (*responseWriter)(nil)
	_ http.Hijacker   = (*responseWriter)(nil)
	_ io.ReaderFrom   = (*responseWriter)(nil)
	_ io.StringWriter = (*responseWriter)(nil)
)

func (cw *responseWriter) Header() http.Header { return cw.w.Header() }

// Unwrap lets http.ResponseController reach the connection's writer
// (deadlines).
func (cw *responseWriter) Unwrap() http.ResponseWriter { return cw.w }

func (cw *responseWriter) WriteHeader(status int) {
	if cw.state != stateInit {
		return
	}
	if status < 200 {
		cw.w.WriteHeader(status) // 1xx: the final status comes later
		return
	}
	hdr := cw.w.Header()
	addVary(hdr)
	cw.status = status
	if !cw.eligible(status, hdr) {
		cw.pass()
		return
	}
	if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < cw.h.minSize {
			cw.pass()
			return
		}
		cw.start()
		return
	}
	if cw.head {
		cw.pass() // nothing to measure
		return
	}
	cw.state = stateHold
}

// eligible reports whether the response may be compressed, as the
// Handler's doc says.
func (cw *responseWriter) eligible(status int, hdr http.Header) bool {
	if cw.enc == None {
		return false
	}
	switch status {
	case http.StatusNoContent, http.StatusPartialContent, http.StatusNotModified:
		return false
	}
	if ce := hdr["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(strings.TrimSpace(ce[0]), "identity")) {
		return false
	}
	if len(hdr["Content-Range"]) > 0 {
		return false
	}
	for _, v := range hdr["Cache-Control"] {
		if containsTokenFold(v, "no-transform") {
			return false
		}
	}
	ct := hdr["Content-Type"]
	return len(ct) == 1 && cw.h.types.match(ct[0])
}

// pass sends the held status (and bytes) unchanged.
func (cw *responseWriter) pass() {
	cw.state = statePass
	cw.w.WriteHeader(cw.status)
}

// start switches to compressing: the header fields change, the status
// goes out, and an encoder takes the body.
func (cw *responseWriter) start() {
	hdr := cw.w.Header()
	delete(hdr, "Content-Length")
	delete(hdr, "Accept-Ranges")
	hdr["Content-Encoding"] = []string{cw.enc.Token()}
	for _, k := range [...]string{"Etag", "ETag"} { // canonical, and as some handlers write it
		if et := hdr[k]; len(et) == 1 && strings.HasPrefix(et[0], `"`) {
			hdr[k] = []string{"W/" + et[0]}
		}
	}
	cw.w.WriteHeader(cw.status)
	if cw.head {
		cw.state = statePass // net/http drops a HEAD's body
		return
	}
	cw.state = stateCompress
	cw.ew = cw.h.codec.get(cw.enc, cw.w)
}

func (cw *responseWriter) Write(p []byte) (int, error) {
	if cw.state == stateInit {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.state {
	case stateCompress:
		return cw.ew.Write(p)
	case stateHold:
		if int64(len(cw.held)+len(p)) < cw.h.minSize {
			cw.held = append(cw.held, p...)
			return len(p), nil
		}
		cw.start()
		if err := cw.writeHeld(); err != nil {
			return 0, err
		}
		return cw.ew.Write(p)
	case stateHijacked:
		return 0, http.ErrHijacked
	}
	return cw.w.Write(p)
}

func (cw *responseWriter) WriteString(s string) (int, error) {
	if cw.state == statePass {
		return io.WriteString(cw.w, s)
	}
	return cw.Write([]byte(s))
}

// writeHeld sends the bytes held back into the encoder.
func (cw *responseWriter) writeHeld() error {
	if len(cw.held) == 0 {
		return nil
	}
	_, err := cw.ew.Write(cw.held)
	cw.held = nil
	return err
}

// ReadFrom keeps sendfile for responses that are not compressed.
func (cw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if cw.state == stateInit {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.state == statePass {
		if rf, ok := cw.w.(io.ReaderFrom); ok {
			return rf.ReadFrom(src)
		}
	}
	bp := cw.h.bufs.Get().(*[]byte)
	defer cw.h.bufs.Put(bp)
	return io.CopyBuffer(writerOnly{cw}, src, *bp)
}

// writerOnly hides ReadFrom from io.CopyBuffer (which would recurse).
type writerOnly struct{ io.Writer }

// FlushError flushes what was written so far to the client, through the
// encoder: a flush ends the holding back of a response of unknown length.
func (cw *responseWriter) FlushError() error {
	switch cw.state {
	case stateInit:
		cw.WriteHeader(http.StatusOK)
		if cw.state == stateHold {
			cw.start()
		}
	case stateHold:
		cw.start()
		if err := cw.writeHeld(); err != nil {
			return err
		}
	case stateHijacked:
		return http.ErrHijacked
	}
	if cw.state == stateCompress {
		if err := cw.ew.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(cw.w).Flush()
}

func (cw *responseWriter) Flush() { _ = cw.FlushError() }

func (cw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := cw.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := hj.Hijack()
	if err == nil {
		cw.state = stateHijacked
	}
	return c, rw, err
}

// finish ends the response after the handler returned: a response held
// back below the minimum goes out as it is; an encoder writes its end.
func (cw *responseWriter) finish() {
	if cw.state == stateInit {
		// The handler wrote nothing (a HEAD, an empty body): its header
		// still goes through the decision, as the GET's would.
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.state {
	case stateHold:
		cw.pass()
		if len(cw.held) > 0 {
			_, _ = cw.w.Write(cw.held)
			cw.held = nil
		}
	case stateCompress:
		_ = cw.ew.Close()
		cw.h.codec.put(cw.enc, cw.ew)
		cw.ew = nil
		cw.state = statePass
	}
}

// addVary adds Accept-Encoding to Vary unless it is there (or "*" is).
func addVary(hdr http.Header) {
	for _, v := range hdr["Vary"] {
		if containsTokenFold(v, "accept-encoding") || strings.TrimSpace(v) == "*" {
			return
		}
	}
	hdr["Vary"] = append(hdr["Vary"], "Accept-Encoding")
}

// containsTokenFold reports whether the comma-separated list v holds
// token (ASCII case-insensitively), ignoring parameters after "=".
func containsTokenFold(v, token string) bool {
	for v != "" {
		var item string
		if i := strings.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, ""
		}
		if i := strings.IndexByte(item, '='); i >= 0 {
			item = item[:i]
		}
		if strings.EqualFold(strings.TrimSpace(item), token) {
			return true
		}
	}
	return false
}
