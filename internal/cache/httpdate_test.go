package cache

import (
	"net/http"
	"testing"
	"time"
)

// RFC 9110 section 5.6.7 (HTTP-date) as RFC 9111 section 5.3 (Expires)
// reads it: an invalid date means already expired.
func TestParseHTTPDate(t *testing.T) {
	want := time.Date(2050, 8, 18, 2, 1, 18, 0, time.UTC)
	for in, ok := range map[string]bool{
		"Thu, 18 Aug 2050 02:01:18 GMT":    true,
		"Thu, 18 Aug 2050 02:01:18 gMT":    true, // case of names is not significant
		"thu, 18 aug 2050 02:01:18 GMT":    true,
		"Thursday, 18-Aug-50 02:01:18 GMT": true, // RFC 850
		"Thu Aug 18 02:01:18 2050":         true, // asctime
		"Thu, 18  Aug  2050 02:01:18 GMT":  false,
		"Thu, 18 Aug 2050 2:01:18 GMT":     false,
		"Thu, 18 Aug 2050 02:01:18 UTC":    false,
		"0":                                false,
		"":                                 false,
	} {
		got, gotOK := parseHTTPDate(in)
		if gotOK != ok || ok && !got.Equal(want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v; want ok=%v", in, got, gotOK, ok)
		}
	}
}

func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Thu, 18 Aug 2050 02:01:18 GMT", "Thursday, 18-Aug-50 02:01:18 GMT", "Thu Aug 18 02:01:18 2050", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tm, ok := parseHTTPDate(s); ok {
			if _, err := http.ParseTime(tm.Format(http.TimeFormat)); err != nil {
				t.Errorf("%q parsed to %v, which does not format back", s, tm)
			}
		}
	})
}

// RFC 9111 section 5.1: Age "7200, 0" is 7200 (the first value), so a
// max-age=3600 response is stale on arrival.
func TestAgeListFirstValue(t *testing.T) {
	now := time.Now()
	h := http.Header{"Age": {"7200, 0"}, "Date": {now.UTC().Format(http.TimeFormat)}}
	if got := initialAge(h, now, now); got < 7200*time.Second {
		t.Errorf("initialAge(Age: 7200, 0) = %v, want 2h", got)
	}
}
