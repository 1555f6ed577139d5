package static

import (
	"net/http"
	"strconv"
)

// The header fields of a file response, decided once (fileFields) and
// rendered by each engine: into net/http's header map (setFields) or as
// HTTP/1.1 lines (appendFields: the fast path, and entry.Head).

// fieldSet is a set of the header fields a file response carries.
type fieldSet uint16

const (
	fContentType fieldSet = 1 << iota
	fContentLength
	fETag
	fLastModified
	fAcceptRanges
	fContentEncoding
	fVary
	fCacheControl
	fContentRange
)

// fileFields decides the header fields of a file response of e with
// status (as answer decides it). multipart marks a 206 with several
// ranges, whose Content-Type and Content-Length writeMultipart sets;
// cacheControl says whether a Cache-Control value applies. For 412 and
// 416 the error page adds its own fields.
func fileFields(status int, multipart bool, e *entry, cacheControl bool) fieldSet {
	var s fieldSet
	if e.Vary {
		s |= fVary
	}
	if cacheControl {
		s |= fCacheControl
	}
	switch status {
	case http.StatusNotModified:
		// RFC 9110 15.4.5: the validators (and Vary, Cache-Control) the
		// 200 would carry, no content fields.
		s |= fETag | fLastModified
	case http.StatusPreconditionFailed:
	case http.StatusRequestedRangeNotSatisfiable:
		// RFC 9110 15.5.17: Content-Range "bytes */size".
		s |= fContentRange | fAcceptRanges
	default: // 200, 206
		s |= fETag | fLastModified | fAcceptRanges
		if e.Encoding != "" {
			s |= fContentEncoding
		}
		if !multipart {
			s |= fContentType | fContentLength
			if status == http.StatusPartialContent {
				s |= fContentRange
			}
		}
	}
	return s
}

// setFields renders set into a net/http header map. It reuses the entry's
// one-element value slices, so a 200 or 304 allocates nothing. With
// fContentRange, Content-Length is rng's length and Content-Range names
// rng ("bytes */size" when rng is empty).
func setFields(hdr http.Header, set fieldSet, e *entry, cacheControl []string, rng byteRange) {
	if set&fContentType != 0 {
		hdr["Content-Type"] = e.ContentType
	}
	if set&fContentLength != 0 {
		if set&fContentRange != 0 {
			hdr["Content-Length"] = []string{strconv.FormatInt(rng.length, 10)}
		} else {
			hdr["Content-Length"] = e.ContentLength
		}
	}
	if set&fETag != 0 {
		hdr["ETag"] = e.ETag
	}
	if set&fLastModified != 0 {
		hdr["Last-Modified"] = e.LastModified
	}
	if set&fAcceptRanges != 0 {
		hdr["Accept-Ranges"] = hvBytes
	}
	if set&fContentEncoding != 0 {
		hdr["Content-Encoding"] = e.ContentEncoding
	}
	if set&fVary != 0 {
		hdr["Vary"] = hvVaryAE
	}
	if set&fCacheControl != 0 {
		hdr["Cache-Control"] = cacheControl
	}
	if set&fContentRange != 0 {
		hdr["Content-Range"] = []string{contentRange(rng, e.Size)}
	}
}

// appendFields renders set as HTTP/1.1 header lines, as setFields does.
// It allocates only if b lacks room.
func appendFields(b []byte, set fieldSet, e *entry, cacheControl string, rng byteRange) []byte {
	line := func(b []byte, k, v string) []byte {
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
		return append(b, "\r\n"...)
	}
	if set&fContentType != 0 {
		b = line(b, "Content-Type", e.ContentType[0])
	}
	if set&fContentLength != 0 {
		if set&fContentRange != 0 {
			b = append(b, "Content-Length: "...)
			b = strconv.AppendInt(b, rng.length, 10)
			b = append(b, "\r\n"...)
		} else {
			b = line(b, "Content-Length", e.ContentLength[0])
		}
	}
	if set&fETag != 0 {
		b = line(b, "ETag", e.ETag[0])
	}
	if set&fLastModified != 0 {
		b = line(b, "Last-Modified", e.LastModified[0])
	}
	if set&fAcceptRanges != 0 {
		b = line(b, "Accept-Ranges", "bytes")
	}
	if set&fContentEncoding != 0 {
		b = line(b, "Content-Encoding", e.Encoding)
	}
	if set&fVary != 0 {
		b = line(b, "Vary", "Accept-Encoding")
	}
	if set&fCacheControl != 0 {
		b = line(b, "Cache-Control", cacheControl)
	}
	if set&fContentRange != 0 {
		b = append(b, "Content-Range: "...)
		b = appendContentRange(b, rng, e.Size)
		b = append(b, "\r\n"...)
	}
	return b
}

// buildHead renders the entry's 200-response header lines (entry.Head).
func buildHead(e *entry, cacheControl []string) []byte {
	cc := ""
	if cacheControl != nil {
		cc = cacheControl[0]
	}
	return appendFields(make([]byte, 0, 192), fileFields(http.StatusOK, false, e, cacheControl != nil), e, cc, byteRange{})
}

// contentRange formats a Content-Range value (appendContentRange).
func contentRange(r byteRange, size int64) string {
	var b [64]byte
	return string(appendContentRange(b[:0], r, size))
}

// appendContentRange appends the Content-Range value of r (RFC 9110
// 14.4): "bytes a-b/size", or "bytes */size" for an empty r (a 416).
func appendContentRange(b []byte, r byteRange, size int64) []byte {
	b = append(b, "bytes "...)
	if r.length == 0 {
		b = append(b, '*')
	} else {
		b = strconv.AppendInt(b, r.start, 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, r.start+r.length-1, 10)
	}
	b = append(b, '/')
	return strconv.AppendInt(b, size, 10)
}
