package cache

import "strings"

// maxDelta is the largest delta-seconds value kept: RFC 9111 section 1.2.2
// says a larger value is to be taken as 2147483648 (2^31).
const maxDelta = 1 << 31

// cacheControl is a parsed Cache-Control field (RFC 9111 section 5.2),
// request or response. Durations are in seconds; -1 means absent.
//
// Parsing rules (the fuzz target FuzzParseCacheControl holds them):
//   - directive names are case-insensitive; values may be tokens or
//     quoted-strings (`max-age="60"` is accepted, RFC 9111 section 5.2);
//   - a delta-seconds value that is not a non-negative decimal integer
//     (empty, signed, fractional, garbage) makes the directive invalid; an
//     invalid max-age or s-maxage means the response is stale (RFC 9111
//     section 4.2.1), so it is recorded as 0 with the invalid flag set;
//   - duplicates of max-age or s-maxage with different values are treated
//     the same way (stale), as section 4.2.1 allows;
//   - values past 2^31 are capped to 2^31 (section 1.2.2);
//   - `no-cache="field"` and `private="field"` are treated as their
//     unqualified forms (stricter: the whole response is revalidated or not
//     stored); unknown directives are ignored.
type cacheControl struct {
	maxAge, sMaxAge  int64
	maxStale         int64 // request: -1 absent; maxStaleAny for a bare max-stale
	minFresh         int64
	staleWhileReval  int64 // RFC 5861
	staleIfError     int64 // RFC 5861
	maxStaleAny      bool
	maxAgeInvalid    bool
	sMaxAgeInvalid   bool
	noStore, noCache bool
	private, public  bool
	mustRevalidate   bool
	proxyRevalidate  bool
	onlyIfCached     bool
	noTransform      bool
	immutable        bool
	mustUnderstand   bool // RFC 9111 section 5.2.2.3
	hasAnyDirective  bool
}

func newCacheControl() cacheControl {
	return cacheControl{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, staleWhileReval: -1, staleIfError: -1}
}

// parseCacheControl parses every line of a Cache-Control field.
func parseCacheControl(lines []string) cacheControl {
	cc := newCacheControl()
	for _, line := range lines {
		parseCacheControlLine(&cc, line)
	}
	return cc
}

func parseCacheControlLine(cc *cacheControl, s string) {
	i := 0
	for i < len(s) {
		// Skip separators and whitespace.
		for i < len(s) && (s[i] == ',' || s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' {
			i++
		}
		name := strings.TrimRight(s[start:i], " \t")
		var value string
		hasValue := false
		if i < len(s) && s[i] == '=' {
			hasValue = true
			i++
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			if i < len(s) && s[i] == '"' {
				// quoted-string with backslash escapes
				i++
				var b strings.Builder
				for i < len(s) && s[i] != '"' {
					if s[i] == '\\' && i+1 < len(s) {
						i++
					}
					b.WriteByte(s[i])
					i++
				}
				if i < len(s) {
					i++ // closing quote
				}
				value = b.String()
				// Anything up to the next comma after a quoted string is junk.
				for i < len(s) && s[i] != ',' {
					i++
				}
			} else {
				vs := i
				for i < len(s) && s[i] != ',' {
					i++
				}
				value = strings.TrimRight(s[vs:i], " \t")
			}
		}
		if name == "" {
			continue
		}
		cc.apply(name, value, hasValue)
	}
}

// asciiLower lower-cases ASCII letters only (strings.ToLower folds some
// non-ASCII letters onto ASCII ones, which would let "ſ-maxage" through).
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func (cc *cacheControl) apply(name, value string, hasValue bool) {
	cc.hasAnyDirective = true
	switch asciiLower(name) {
	case "max-age":
		setDelta(&cc.maxAge, &cc.maxAgeInvalid, value, hasValue)
	case "s-maxage":
		setDelta(&cc.sMaxAge, &cc.sMaxAgeInvalid, value, hasValue)
	case "max-stale":
		if !hasValue {
			cc.maxStaleAny = true
			return
		}
		if n, ok := parseDelta(value); ok {
			cc.maxStale = n
		}
	case "min-fresh":
		if n, ok := parseDelta(value); ok && hasValue {
			cc.minFresh = n
		}
	case "stale-while-revalidate":
		if n, ok := parseDelta(value); ok && hasValue {
			cc.staleWhileReval = n
		}
	case "stale-if-error":
		if n, ok := parseDelta(value); ok && hasValue {
			cc.staleIfError = n
		}
	case "no-store":
		cc.noStore = true
	case "no-cache":
		cc.noCache = true
	case "private":
		cc.private = true
	case "public":
		cc.public = true
	case "must-revalidate":
		cc.mustRevalidate = true
	case "proxy-revalidate":
		cc.proxyRevalidate = true
	case "only-if-cached":
		cc.onlyIfCached = true
	case "no-transform":
		cc.noTransform = true
	case "immutable":
		cc.immutable = true
	case "must-understand":
		cc.mustUnderstand = true
	}
}

// setDelta records a max-age style value: invalid or conflicting values
// make it 0 and set the invalid flag (the response is stale).
func setDelta(dst *int64, invalid *bool, value string, hasValue bool) {
	n, ok := parseDelta(value)
	if !hasValue || !ok {
		*dst, *invalid = 0, true
		return
	}
	if *invalid {
		return
	}
	if *dst >= 0 && *dst != n {
		*dst, *invalid = 0, true
		return
	}
	*dst = n
}

// parseDelta parses delta-seconds (1*DIGIT), capping at 2^31.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	if n > maxDelta {
		n = maxDelta
	}
	return n, true
}
