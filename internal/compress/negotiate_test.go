package compress

import (
	"strings"
	"testing"
)

var allThree = []Encoding{Zstd, Brotli, Gzip}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		ae    string
		order []Encoding
		want  Encoding
	}{
		{"", allThree, None},
		{"identity", allThree, None},
		{"gzip", allThree, Gzip},
		{"x-gzip", allThree, Gzip},
		{"GZIP", allThree, Gzip},
		{"gzip, deflate, br", allThree, Brotli},      // equal q: configured order
		{"gzip, deflate, br, zstd", allThree, Zstd},  // Chrome 123+
		{"gzip, br", []Encoding{Gzip, Brotli}, Gzip}, // order decides ties
		{"gzip;q=1, br;q=0.5", allThree, Gzip},       // q decides first (RFC 9110 12.5.3)
		{"br;q=0, gzip", allThree, Gzip},             // refused
		{"br;q=0", allThree, None},
		{"*", allThree, Zstd}, // any: the first configured
		{"*;q=0", allThree, None},
		{"*, gzip;q=0", []Encoding{Gzip}, None}, // named refusal beats *
		{"*;q=0.1, gzip;q=0.2", allThree, Gzip},
		{"gzip;q=1.001", allThree, None}, // malformed q: refused
		{"gzip;q=abc", allThree, None},
		{"gzip ; q=0.8 , br ; q=0.9", allThree, Brotli}, // blanks
		{"deflate, compress", allThree, None},
		{"zstd", []Encoding{Gzip}, None}, // not configured
		{"gzip;foo=bar;q=0.5", allThree, Gzip},
		{",,,gzip,,", allThree, Gzip},
		{"gzip;q=0, gzip;q=1", allThree, Gzip}, // repeated: the higher
	}
	for _, c := range cases {
		if got := Negotiate(c.ae, c.order); got != c.want {
			t.Errorf("Negotiate(%q, %v) = %s, want %s", c.ae, c.order, got.Token(), c.want.Token())
		}
	}
}

func TestNegotiateNoAlloc(t *testing.T) {
	n := testing.AllocsPerRun(100, func() { Negotiate("gzip, deflate, br;q=0.9, zstd;q=0.8, *;q=0.1", allThree) })
	if n != 0 {
		t.Errorf("Negotiate allocates %v times", n)
	}
}

// FuzzNegotiate: any header value gives an encoding that is None or
// configured, never one the value refuses or does not cover, and never
// panics.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip, deflate, br, zstd", "br;q=0.5, gzip;q=0.6", "*;q=0", "*, br;q=0", "x-gzip;q=0.001", "gzip;q=1.0000", "\x00;q=", ";;;,,,"} {
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, ae string, mask uint8) {
		var order []Encoding
		for _, e := range allThree {
			if mask&(1<<e) != 0 {
				order = append(order, e)
			}
		}
		got := Negotiate(ae, order)
		if got == None {
			return
		}
		inOrder := false
		for _, e := range order {
			inOrder = inOrder || e == got
		}
		if !inOrder {
			t.Fatalf("Negotiate(%q, %v) = %s, not configured", ae, order, got.Token())
		}
		low := strings.ToLower(ae)
		if !strings.Contains(low, got.Token()) && !strings.Contains(low, "*") {
			t.Fatalf("Negotiate(%q) = %s, which the value does not name", ae, got.Token())
		}
	})
}

func TestTypeSet(t *testing.T) {
	ts := newTypeSet([]string{"text/*", "application/json", "application/*+xml", "image/svg+xml"})
	cases := map[string]bool{
		"text/html; charset=utf-8": true,
		"TEXT/CSS":                 true,
		"application/json":         true,
		"application/atom+xml":     true,
		"application/xml":          false,
		"image/svg+xml":            true,
		"image/png":                false,
		"":                         false,
		"application/jsonp":        false,
		" text/plain ":             true,
	}
	for ct, want := range cases {
		if got := ts.match(ct); got != want {
			t.Errorf("match(%q) = %v, want %v", ct, got, want)
		}
	}
}
