package cache

import (
	"net/http"
	"strings"
	"time"
)

// parseHTTPDate parses an HTTP-date (RFC 9110 section 5.6.7) strictly:
// the layout of one of its three formats exactly (IMF-fixdate, RFC 850,
// asctime), so "Thu, 18  Aug  2050 ..." (two spaces) or a one-digit hour
// is invalid, not read loosely as time.Parse would; names are matched
// case-insensitively ("gMT" is GMT: the section asks recipients to be
// lenient about case only).
func parseHTTPDate(s string) (time.Time, bool) {
	var layout string
	switch {
	case len(s) == 29 && s[3] == ',' && fixedLayout(s, "Mon, 02 Jan 2006 15:04:05 GMT"):
		layout = http.TimeFormat
	case len(s) == 24 && fixedLayout(s, "Mon Jan _2 15:04:05 2006"):
		layout = time.ANSIC
	default:
		i := strings.IndexByte(s, ',')
		if i < 6 || i > 9 || len(s)-i != 24 || !fixedLayout(s[i:], ", 02-Jan-06 15:04:05 GMT") {
			return time.Time{}, false
		}
		layout = time.RFC850
	}
	t, err := time.Parse(layout, normaliseDateCase(s))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// fixedLayout checks that s has digits, letters, spaces and punctuation
// exactly where the reference layout has them (same length).
func fixedLayout(s, ref string) bool {
	if len(s) != len(ref) {
		return false
	}
	for i := 0; i < len(ref); i++ {
		r, c := ref[i], s[i]
		switch {
		case r >= '0' && r <= '9':
			if c < '0' || c > '9' {
				return false
			}
		case r == '_': // asctime's day: a space or a digit
			if c != ' ' && (c < '0' || c > '9') {
				return false
			}
		case r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z':
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
				return false
			}
		default:
			if c != r {
				return false
			}
		}
	}
	return true
}

// normaliseDateCase writes the names of a date the way time.Parse wants
// them: day and month names capitalised, GMT upper case.
func normaliseDateCase(s string) string {
	b := []byte(s)
	word := 0 // letters into the current word
	for i, c := range b {
		isLetter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !isLetter {
			word = 0
			continue
		}
		lower := c | 0x20
		if word == 0 {
			b[i] = lower - 0x20
		} else {
			b[i] = lower
		}
		word++
	}
	out := string(b)
	if strings.HasSuffix(out, "Gmt") {
		out = out[:len(out)-3] + "GMT"
	}
	return out
}
