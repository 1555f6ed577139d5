package httpnum

import (
	"strconv"
	"testing"
)

func TestDigits(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1024", 1024, true},
		{"007", 7, true},
		{"999999999999999999", 999999999999999999, true}, // 18 digits
		{"1000000000000000000", 0, false},                // 19 digits
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"١", 0, false}, // an Arabic-Indic digit is not ASCII
	}
	for _, tc := range cases {
		got, ok := Digits(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Digits(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if gb, okb := Digits([]byte(tc.in)); gb != got || okb != ok {
			t.Errorf("Digits([]byte(%q)) = %d, %v; the string gave %d, %v", tc.in, gb, okb, got, ok)
		}
	}
}

// FuzzDigits checks Digits against strconv on what it accepts, and that
// it accepts every run of 1 to 18 digits.
func FuzzDigits(f *testing.F) {
	for _, s := range []string{"0", "1024", "", "-1", "999999999999999999", "1000000000000000000", "12a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := Digits(s)
		allDigits := len(s) > 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				allDigits = false
			}
		}
		if want := allDigits && len(s) <= MaxDigits; ok != want {
			t.Fatalf("Digits(%q) ok = %v, want %v", s, ok, want)
		}
		if ok {
			if v, err := strconv.ParseInt(s, 10, 64); err != nil || v != n {
				t.Fatalf("Digits(%q) = %d, strconv says %d (%v)", s, n, v, err)
			}
		}
	})
}
