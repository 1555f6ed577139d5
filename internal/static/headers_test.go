package static

import (
	"fmt"
	"testing"
)

func TestPickEncoding(t *testing.T) {
	all := [numEnc]bool{true, true, true}
	gzOnly := [numEnc]bool{false, false, true}
	for _, c := range []struct {
		ae   string
		have [numEnc]bool
		want int
	}{
		{"", all, -1},
		{"gzip", all, encGzip},
		{"gzip, br", all, encBr},
		{"gzip, zstd", all, encZstd},
		{"br;q=0, gzip", all, encGzip},
		{"br;q=0.0, zstd;q=0, gzip;q=0", all, -1},
		{"br;q=0.2, gzip;q=0.9", all, encGzip},
		{"BR, GZIP", all, encBr},
		{"x-gzip", all, encGzip},
		{"*", all, encBr},
		{"*;q=0", all, -1},
		{"*, br;q=0", all, encZstd},
		{"identity", all, -1},
		{"br", gzOnly, -1},
		{"br, gzip", gzOnly, encGzip},
		{" gzip ; q=1.000 ", all, encGzip},
		{"gzip;q=2", all, -1},
		{"gzip;q=abc", all, -1},
		{"gzip;q=0.001", all, encGzip},
		{"gzip;level=1;q=0.5", all, encGzip},
	} {
		have := c.have
		if got := pickEncoding(c.ae, &have); got != c.want {
			t.Errorf("pickEncoding(%q): got %d, want %d", c.ae, got, c.want)
		}
	}
}

func TestAcceptsHTML(t *testing.T) {
	for _, c := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"*/*"}, false},
		{[]string{"text/*"}, false},
		{[]string{"text/html"}, true},
		{[]string{"text/html,application/xhtml+xml,*/*;q=0.8"}, true},
		{[]string{"application/json", "TEXT/HTML; charset=utf-8"}, true},
		{[]string{"text/html;q=0"}, false},
		{[]string{"text/htmlx"}, false},
	} {
		if got := acceptsHTML(c.accept); got != c.want {
			t.Errorf("acceptsHTML(%q): got %v, want %v", c.accept, got, c.want)
		}
	}
}

func TestEtagListMatch(t *testing.T) {
	tag := `"abc"`
	for _, c := range []struct {
		list       string
		weak, want bool
	}{
		{`"abc"`, true, true},
		{`"abc"`, false, true},
		{`W/"abc"`, true, true},
		{`W/"abc"`, false, false},
		{`"x", "abc"`, true, true},
		{`"x","y"`, true, false},
		{`*`, false, true},
		{`abc`, true, false},
		{`"ab`, true, false},
		{`"abc""`, true, true},
		{``, true, false},
		{`"a,bc"`, true, false},
	} {
		if got := etagListMatch(c.list, tag, c.weak); got != c.want {
			t.Errorf("etagListMatch(%q, weak=%v): got %v, want %v", c.list, c.weak, got, c.want)
		}
	}
}

func TestParseRanges(t *testing.T) {
	for _, c := range []struct {
		spec string
		size int64
		want string
		res  rangeResult
	}{
		{"bytes=0-3", 10, "[{0 4}]", rangeOK},
		{"bytes=-3", 10, "[{7 3}]", rangeOK},
		{"bytes=-30", 10, "[{0 10}]", rangeOK},
		{"bytes=3-", 10, "[{3 7}]", rangeOK},
		{"bytes=3-100", 10, "[{3 7}]", rangeOK},
		{"BYTES=0-0", 10, "[{0 1}]", rangeOK},
		{"bytes= 0-1 , 4-5", 10, "[{0 2} {4 2}]", rangeOK},
		{"bytes=0-1,,4-5", 10, "[{0 2} {4 2}]", rangeOK},
		{"bytes=10-", 10, "[]", rangeUnsatisfiable},
		{"bytes=-0", 10, "[]", rangeUnsatisfiable},
		{"bytes=10-20,30-", 10, "[]", rangeUnsatisfiable},
		{"bytes=10-20,0-0", 10, "[{0 1}]", rangeOK},
		{"bytes=", 10, "[]", rangeIgnore},
		{"bytes=a-b", 10, "[]", rangeIgnore},
		{"bytes=5-1", 10, "[]", rangeIgnore},
		{"bytes=1", 10, "[]", rangeIgnore},
		{"bytes=--1", 10, "[]", rangeIgnore},
		{"bytes=+1-2", 10, "[]", rangeIgnore},
		{"items=0-1", 10, "[]", rangeIgnore},
		{"bytes=0-9,0-9", 10, "[]", rangeIgnore},
		{"bytes=99999999999999999999-", 10, "[]", rangeIgnore},
	} {
		rs, res := parseRanges(c.spec, c.size, nil)
		got := fmt.Sprint(rs)
		if got != c.want || res != c.res {
			t.Errorf("parseRanges(%q, %d): got %s %d, want %s %d", c.spec, c.size, got, res, c.want, c.res)
		}
	}
}

// FuzzParseRanges asserts that accepted ranges are non-empty, inside the
// file, few, and add up to at most the file size.
func FuzzParseRanges(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=3-", "bytes=0-0,5-9,-1", "bytes=9999-", "bytes=1-0"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, spec string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		rs, res := parseRanges(spec, size, nil)
		if res != rangeOK {
			if len(rs) != 0 {
				t.Fatalf("non-OK result with ranges %v", rs)
			}
			return
		}
		if len(rs) == 0 || len(rs) > maxRanges {
			t.Fatalf("%q: got %d ranges", spec, len(rs))
		}
		var total int64
		for _, r := range rs {
			if r.length <= 0 || r.start < 0 || r.start+r.length > size {
				t.Fatalf("%q size %d: bad range %v", spec, size, r)
			}
			total += r.length
		}
		if total > size {
			t.Fatalf("%q: total %d > size %d", spec, total, size)
		}
	})
}

// FuzzPickEncoding asserts that the chosen encoding is one that exists and
// was not refused with q=0.
func FuzzPickEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=0, gzip", "*", "*;q=0", "zstd;q=0.5, br;q=0.5"} {
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, ae string, mask uint8) {
		have := [numEnc]bool{mask&1 != 0, mask&2 != 0, mask&4 != 0}
		got := pickEncoding(ae, &have)
		if got == -1 {
			return
		}
		if got < 0 || got >= numEnc || !have[got] {
			t.Fatalf("%q %v: got %d", ae, have, got)
		}
	})
}
