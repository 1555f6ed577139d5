package cache

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"portico/internal/accessinfo"
)

// fetchWriter is the ResponseWriter next writes an upstream response to.
// At WriteHeader it decides: a 304 to a revalidation refreshes the stored
// entry and the client gets that; an error while a stale entry may serve
// (stale-if-error) gives the client the stale entry; anything else streams
// to the client as it comes, and when storable is also copied into a
// buffer (dropped past max_object_size) that becomes the stored entry when
// the body is complete. client is nil for a background refresh.
//
// It keeps http.Flusher, http.Hijacker and io.ReaderFrom, and Unwrap for
// http.ResponseController. 1xx informational responses are relayed to
// the client and never stored (interim).
type fetchWriter struct {
	h       *Handler
	client  http.ResponseWriter
	req     *http.Request // the client's request: its conditionals and Vary values
	st      fetchState
	f       *flight // nil when not leading a flight
	reqTime time.Time
	epoch   uint64      // invalidations.begin() before going upstream
	hdr     http.Header // what next writes; copied to the client at WriteHeader

	wroteHeader       bool
	status            int
	respTime          time.Time
	swallow           bool   // the upstream body is not for the client
	result            *entry // served to the client instead, after next returns
	resultStatus      string
	clientNotModified bool // the client got a 304; the body is only stored
	tee               bool
	buf               []byte
	names             []string // the response's Vary names
	failed            bool
	retry             bool
}

var (
	_ http.Flusher  = (*fetchWriter)(nil)
	_ http.Hijacker = (*fetchWriter)(nil)
	_ io.ReaderFrom = (*fetchWriter)(nil)
)

func (fw *fetchWriter) Header() http.Header { return fw.hdr }

func (fw *fetchWriter) release(e *entry) {
	if fw.f != nil {
		fw.h.release(fw.st.key, fw.f, e)
	}
}

// logStatus reports the cache's verdict to the access log (not for a
// background refresh, which has no client).
func (fw *fetchWriter) logStatus(s string) {
	if fw.client != nil {
		accessinfo.CacheStatus(fw.client, s)
	}
}

func (fw *fetchWriter) ctx() context.Context { return context.WithoutCancel(fw.req.Context()) }

func (fw *fetchWriter) WriteHeader(code int) {
	if fw.wroteHeader {
		return
	}
	if code < 200 {
		fw.interim(code)
		return
	}
	fw.wroteHeader = true
	fw.status = code
	h, st := fw.h, &fw.st
	now := h.now()
	fw.respTime = now

	if st.stale != nil && code == http.StatusNotModified {
		fw.swallow = true
		e := refreshed(st.stale, fw.hdr, fw.reqTime, now)
		if e != nil && h.tagHeader != "" {
			if tags := parseTags(fw.hdr, h.tagHeader); tags != nil {
				e.Tags = tags // the 304 retagged it
			}
			delete(e.Header, h.tagHeader)
		}
		if e == nil {
			fw.retry = true
			fw.release(nil)
			return
		}
		fw.result = e
		fw.logStatus(logRevalidated)
		fw.resultStatus = cacheStatus{fwd: st.fwd, fwdStatus: http.StatusNotModified}.String()
		if cc := parseCacheControl(responseDirectives(e.Header)); cc.noStore || cc.private {
			h.store.Delete(fw.ctx(), st.storeKey)
		} else if guard := h.inv.guard(st.key, fw.epoch); guard() {
			h.store.Set(fw.ctx(), st.storeKey, e, guard)
		}
		fw.release(e)
		return
	}
	if st.stale != nil && code >= 500 && st.stale.staleIfError(st.rcc, st.stale.age(now)) {
		fw.swallow = true
		fw.result = st.stale
		fw.logStatus(logStale)
		fw.resultStatus = cacheStatus{fwd: "stale", fwdStatus: code, detail: "stale-if-error"}.String()
		fw.release(st.stale)
		return
	}

	if st.stale != nil {
		fw.logStatus(logExpired)
	} else {
		fw.logStatus(logMiss)
	}
	// Announced as stored only if the store can take it (Redis answers)
	// and no invalidation came since the request went upstream.
	storable := h.storable(fw.req, st.rcc, code, fw.hdr, now) &&
		h.store.Healthy() && h.inv.current(st.key, fw.epoch)
	if storable {
		if cl := fw.hdr["Content-Length"]; len(cl) > 0 {
			n, err := strconv.ParseInt(cl[0], 10, 64)
			if err != nil || n < 0 || n > h.maxObject {
				storable = false
			} else {
				fw.buf = make([]byte, 0, n)
			}
		}
	}
	if storable {
		fw.tee = true
		fw.names, _ = varyNames(fw.hdr)
		if fw.buf == nil {
			fw.buf = make([]byte, 0, 4096)
		}
	} else {
		fw.release(nil)
		if st.stale != nil && code < 500 && fw.req.Method == http.MethodGet {
			// Superseded by a response that may not be stored.
			h.store.Delete(fw.ctx(), st.storeKey)
		}
	}
	if fw.client == nil {
		return
	}
	cs := cacheStatus{fwd: st.fwd, stored: storable}
	if st.stale != nil {
		cs.fwdStatus = code
	}
	dst := fw.client.Header()
	for k, v := range fw.hdr {
		dst[k] = v
	}
	if h.tagHeader != "" {
		delete(dst, h.tagHeader) // the upstream's tags are for the cache only
	}
	stripTargeted(dst)
	dst["Cache-Status"] = append(slices.Clip(fw.hdr["Cache-Status"]), cs.String())
	if storable && code == http.StatusOK && fw.req.Method == http.MethodGet && fw.clientConditionalMatches() {
		fw.clientNotModified = true
		for _, k := range bodyFields() {
			delete(dst, k)
		}
		fw.client.WriteHeader(http.StatusNotModified)
		return
	}
	fw.client.WriteHeader(code)
}

// interim relays a 1xx (102 Processing, 103 Early Hints...) to the client
// with its own fields, then takes those fields back off the client's
// header: they belong to the interim response, not the final one, and
// nothing of a 1xx is stored (RFC 9111 section 3: only final responses).
// 101 is not relayed (an upgrade never reaches the cache's fetch).
func (fw *fetchWriter) interim(code int) {
	if fw.client == nil || code == http.StatusSwitchingProtocols || fw.swallow {
		return
	}
	dst := fw.client.Header()
	saved := make(map[string][]string, len(fw.hdr))
	for k, v := range fw.hdr {
		saved[k] = dst[k] // nil when dst had none
		dst[k] = v
	}
	fw.client.WriteHeader(code)
	for k, v := range saved {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

// clientConditionalMatches evaluates the client's own validators (which
// were not sent upstream) against the response being stored.
func (fw *fetchWriter) clientConditionalMatches() bool {
	c := conditionalOf(fw.req.Header)
	if !c.hasINM && fw.req.Header["If-Modified-Since"] == nil {
		return false
	}
	lastMod, _ := http.ParseTime(fw.hdr.Get("Last-Modified"))
	return c.notModified(fw.hdr.Get("Etag"), lastMod)
}

func (fw *fetchWriter) Write(p []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.swallow {
		return len(p), nil
	}
	if !bodyAllowed(fw.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if fw.tee {
		if int64(len(fw.buf)+len(p)) > fw.h.maxObject {
			fw.dropTee()
		} else {
			fw.buf = append(fw.buf, p...)
		}
	}
	if fw.client == nil || fw.clientNotModified {
		return len(p), nil
	}
	n, err := fw.client.Write(p)
	if err != nil {
		fw.failed = true
		fw.dropTee()
	}
	return n, err
}

// dropTee stops storing: the response passes through unstored and the
// collapsed waiters go upstream themselves.
func (fw *fetchWriter) dropTee() {
	if fw.tee {
		fw.tee = false
		fw.buf = nil
		fw.release(nil)
	}
}

func (fw *fetchWriter) Flush() {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.swallow || fw.client == nil || fw.clientNotModified {
		return
	}
	if fl, ok := fw.client.(http.Flusher); ok {
		fl.Flush()
	} else {
		_ = http.NewResponseController(fw.client).Flush()
	}
}

// ReadFrom keeps sendfile and splice for responses that pass through
// unstored; a stored response is copied through Write to be teed.
func (fw *fetchWriter) ReadFrom(src io.Reader) (int64, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if !fw.tee && !fw.swallow && fw.client != nil && !fw.clientNotModified {
		if rf, ok := fw.client.(io.ReaderFrom); ok {
			n, err := rf.ReadFrom(src)
			if err != nil {
				fw.failed = true
			}
			return n, err
		}
	}
	return io.Copy(writerOnly{fw}, src)
}

type writerOnly struct{ io.Writer }

func (fw *fetchWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if fw.client == nil {
		return nil, nil, errors.New("cache: cannot hijack a background fetch")
	}
	fw.failed = true
	fw.dropTee()
	fw.release(nil)
	return http.NewResponseController(fw.client).Hijack()
}

// Unwrap lets http.ResponseController reach the client's writer.
func (fw *fetchWriter) Unwrap() http.ResponseWriter { return fw.client }

// finish runs when next returns: the client gets the refreshed or stale
// entry if one replaces the upstream response, a complete teed body is
// stored, and the flight is released.
func (fw *fetchWriter) finish() {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.result != nil && fw.client != nil {
		fw.h.serveEntry(fw.client, fw.req, fw.result, []string{fw.resultStatus}, fw.h.now())
	}
	var stored *entry
	if fw.tee && !fw.failed {
		cl := fw.hdr["Content-Length"]
		if len(cl) == 0 || cl[0] == strconv.Itoa(len(fw.buf)) {
			body := fw.buf
			if cap(body)-len(body) > len(body)/4 {
				body = slices.Clone(body)
			}
			e := &entry{
				Status: fw.status, Header: storedHeader(fw.hdr), Body: body,
				RequestTime: fw.reqTime, ResponseTime: fw.respTime, URL: fw.h.entryURL(fw.req),
				Tags: parseTags(fw.hdr, fw.h.tagHeader),
			}
			if fw.h.tagHeader != "" {
				delete(e.Header, fw.h.tagHeader)
			}
			finishEntry(e, fw.hdr)
			if fw.h.put(fw.ctx(), fw.req, fw.st, e, fw.names, fw.epoch) {
				stored = e
			}
		}
	}
	fw.copyTrailers()
	fw.release(stored)
}

// abort ends a fetch that panicked (e.g. http.ErrAbortHandler).
func (fw *fetchWriter) abort() {
	fw.failed = true
	fw.tee = false
	fw.release(nil)
}

// copyTrailers passes trailers that next set after the body on to the client.
func (fw *fetchWriter) copyTrailers() {
	if fw.client == nil || fw.swallow {
		return
	}
	dst := fw.client.Header()
	for k, v := range fw.hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			dst[k] = v
		}
	}
	for _, line := range fw.hdr["Trailer"] {
		for _, name := range strings.Split(line, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if v, ok := fw.hdr[name]; ok {
				dst[name] = v
			}
		}
	}
}

// entryURL is the absolute URL of a request, as Purge matches it.
func (h *Handler) entryURL(r *http.Request) string {
	scheme := schemeOf(r)
	u := scheme + "://" + normHost(r.Host, scheme) + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// statusWriter records the status of a response passing through.
type statusWriter struct {
	http.ResponseWriter
	status int
	strip  string // a field removed before the header goes out (tag_header)
}

// begin notes the status of the response starting now and strips its
// header of what is for the cache only (tags, targeted fields).
func (sw *statusWriter) begin(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	hdr := sw.ResponseWriter.Header()
	if sw.strip != "" {
		delete(hdr, sw.strip)
	}
	stripTargeted(hdr)
}

var (
	_ http.Flusher  = (*statusWriter)(nil)
	_ http.Hijacker = (*statusWriter)(nil)
	_ io.ReaderFrom = (*statusWriter)(nil)
)

func (sw *statusWriter) WriteHeader(code int) {
	sw.begin(code)
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.begin(http.StatusOK)
	}
	return sw.ResponseWriter.Write(p)
}

func (sw *statusWriter) Flush() {
	if sw.status == 0 {
		sw.begin(http.StatusOK)
	}
	_ = http.NewResponseController(sw.ResponseWriter).Flush()
}

func (sw *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if sw.status == 0 {
		sw.begin(http.StatusOK)
	}
	if rf, ok := sw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{sw.ResponseWriter}, src)
}

func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(sw.ResponseWriter).Hijack()
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
