package static

import (
	"net/http"
	"strings"
	"time"
)

// The decision core of a file response: which status a GET or HEAD of a
// cached file gets (RFC 9110 13.2.2: preconditions, then ranges), written
// once over plain data. ServeHTTP's path (serveEntry) and the fast path
// (ServeFast) both call answer and only render what it decides.

// fileRequest is what the decision reads of a request: the method and the
// header fields as plain strings, "" when absent. An empty field counts as
// absent, as in net/http's fs.go: the fast path cannot tell the two apart,
// so this is the only reading both engines can give. A list field received
// on several lines (If-Match, If-None-Match) is its lines joined by "\n"
// (fieldLines); the other fields are their first line; Range is "" unless
// it came on exactly one line.
type fileRequest struct {
	method            string
	ifMatch           string
	ifUnmodifiedSince string
	ifNoneMatch       string
	ifModifiedSince   string
	rangeSpec         string
	ifRange           string
}

// requestOf reads a net/http request's fields for answer.
func requestOf(r *http.Request) fileRequest {
	h := r.Header
	fr := fileRequest{
		method:            r.Method,
		ifMatch:           fieldLines(h["If-Match"]),
		ifUnmodifiedSince: firstValue(h["If-Unmodified-Since"]),
		ifNoneMatch:       fieldLines(h["If-None-Match"]),
		ifModifiedSince:   firstValue(h["If-Modified-Since"]),
		ifRange:           firstValue(h["If-Range"]),
	}
	if rh := h["Range"]; len(rh) == 1 {
		fr.rangeSpec = rh[0]
	}
	return fr
}

func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// fieldLines joins the lines of a list field with "\n", which no field
// value can contain, so etagListMatch still reads each line on its own.
// It allocates only for a field sent on several lines.
func fieldLines(v []string) string {
	if len(v) <= 1 {
		return firstValue(v)
	}
	return strings.Join(v, "\n")
}

// answer decides the status of a file response for fr: 304 or 412 by the
// preconditions; else 416, 206 with the ranges (one, or several for
// multipart/byteranges) or 200. buf is reused storage for the ranges.
func answer(fr *fileRequest, e *entry, buf []byteRange) (int, []byteRange) {
	if st := checkPreconditions(fr, e.ETag[0], e.ModTime); st != 0 {
		return st, nil
	}
	ranges, res := decideRanges(fr, e.ETag[0], e.ModTime, e.Size, buf)
	switch res {
	case rangeUnsatisfiable:
		return http.StatusRequestedRangeNotSatisfiable, nil
	case rangeOK:
		return http.StatusPartialContent, ranges
	}
	return http.StatusOK, nil
}

// checkPreconditions evaluates the conditional header fields of fr in the
// order of RFC 9110 13.2.2 against a representation with entity tag etag
// (quoted, strong) and modification time modTime. It returns 0 to go on
// (the method is performed), 304 (Not Modified) or 412 (Precondition
// Failed).
func checkPreconditions(fr *fileRequest, etag string, modTime time.Time) int {
	mod := modTime.Truncate(time.Second) // HTTP dates have whole seconds
	// Step 1 and 2: If-Match (13.1.1, strong comparison), else
	// If-Unmodified-Since (13.1.4; an invalid date is ignored).
	if fr.ifMatch != "" {
		if !etagListMatch(fr.ifMatch, etag, false) {
			return http.StatusPreconditionFailed
		}
	} else if fr.ifUnmodifiedSince != "" {
		if t, err := http.ParseTime(fr.ifUnmodifiedSince); err == nil && mod.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	// Step 3 and 4: If-None-Match (13.1.2, weak comparison), else
	// If-Modified-Since (13.1.3, for GET and HEAD only).
	getOrHead := fr.method == http.MethodGet || fr.method == http.MethodHead
	if fr.ifNoneMatch != "" {
		if etagListMatch(fr.ifNoneMatch, etag, true) {
			if getOrHead {
				return http.StatusNotModified
			}
			return http.StatusPreconditionFailed
		}
	} else if fr.ifModifiedSince != "" && getOrHead {
		if t, err := http.ParseTime(fr.ifModifiedSince); err == nil && !mod.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// decideRanges evaluates Range (RFC 9110 14.2: GET only) and If-Range
// (13.1.5) of fr against a representation of size bytes. An empty
// representation has no ranges to serve: rangeIgnore.
func decideRanges(fr *fileRequest, etag string, modTime time.Time, size int64, buf []byteRange) ([]byteRange, rangeResult) {
	if fr.rangeSpec == "" || fr.method != http.MethodGet || size <= 0 || !ifRangeAllows(fr.ifRange, etag, modTime) {
		return nil, rangeIgnore
	}
	return parseRanges(fr.rangeSpec, size, buf)
}

// ifRangeAllows evaluates If-Range (RFC 9110 13.1.5): ranges apply only if
// the validator still matches (strong comparison for entity tags, an exact
// date for Last-Modified). "" (absent) allows them.
func ifRangeAllows(v, etag string, modTime time.Time) bool {
	if v == "" {
		return true
	}
	s := strings.TrimSpace(v)
	if strings.HasPrefix(s, `"`) {
		return s == etag
	}
	if strings.HasPrefix(s, "W/") {
		return false
	}
	t, err := http.ParseTime(s)
	return err == nil && t.Equal(modTime.Truncate(time.Second))
}
