// Package httpnum reads the decimal numbers of HTTP fields
// (Content-Length, byte ranges): ASCII digits only, no sign, no spaces,
// and at most 18 of them, so the value always fits an int64.
package httpnum

// MaxDigits is the longest number Digits takes: 18 digits never overflow
// an int64 (about 9.2e18).
const MaxDigits = 18

// Digits parses s, a non-empty run of at most MaxDigits ASCII digits.
// Anything else (empty, a sign, a space, a longer run) fails.
func Digits[T ~string | ~[]byte](s T) (int64, bool) {
	if len(s) == 0 || len(s) > MaxDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
