package static

import (
	"strings"

	"portico/internal/httpnum"
)

// byteRange is one satisfiable part of a Range request: length bytes from
// start.
type byteRange struct{ start, length int64 }

type rangeResult int

const (
	rangeIgnore        rangeResult = iota // serve the whole representation (200)
	rangeOK                               // serve the ranges (206)
	rangeUnsatisfiable                    // 416 with Content-Range: bytes */size
)

// maxRanges caps the ranges of one request. Many small or overlapping
// ranges are a known amplification trick (Apache CVE-2011-3192); beyond the
// cap, or when the parts add up to more than the file, the Range header is
// ignored and the whole file is sent once.
const maxRanges = 32

// parseRanges parses a Range header value (RFC 9110 14.1.2) against a
// representation of size bytes. Syntax errors and other units mean
// rangeIgnore, as the RFC allows; if no range overlaps the content it is
// rangeUnsatisfiable. buf is reused storage for the result.
func parseRanges(s string, size int64, buf []byteRange) ([]byteRange, rangeResult) {
	const unit = "bytes="
	if len(s) < len(unit) || !strings.EqualFold(s[:len(unit)], unit) {
		return nil, rangeIgnore
	}
	s = s[len(unit):]
	out := buf[:0]
	specs := 0
	var total int64
	for s != "" {
		var spec string
		if i := strings.IndexByte(s, ','); i >= 0 {
			spec, s = s[:i], s[i+1:]
		} else {
			spec, s = s, ""
		}
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue // empty list elements are allowed
		}
		specs++
		if specs > maxRanges {
			return nil, rangeIgnore
		}
		dash := strings.IndexByte(spec, '-')
		if dash < 0 {
			return nil, rangeIgnore
		}
		first, last := strings.TrimSpace(spec[:dash]), strings.TrimSpace(spec[dash+1:])
		var r byteRange
		if first == "" {
			// Suffix range: the last n bytes.
			n, ok := httpnum.Digits(last)
			if !ok {
				return nil, rangeIgnore
			}
			n = min(n, size)
			if n == 0 {
				continue // unsatisfiable
			}
			r = byteRange{size - n, n}
		} else {
			a, ok := httpnum.Digits(first)
			if !ok {
				return nil, rangeIgnore
			}
			b := size - 1
			if last != "" {
				if b, ok = httpnum.Digits(last); !ok || b < a {
					return nil, rangeIgnore
				}
				b = min(b, size-1)
			}
			if a >= size {
				continue // unsatisfiable
			}
			r = byteRange{a, b - a + 1}
		}
		total += r.length
		if total > size {
			return nil, rangeIgnore
		}
		out = append(out, r)
	}
	if specs == 0 {
		return nil, rangeIgnore
	}
	if len(out) == 0 {
		return nil, rangeUnsatisfiable
	}
	return out, rangeOK
}
