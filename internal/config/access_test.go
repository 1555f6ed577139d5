package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in  string
		n   int
		per time.Duration
		err string
	}{
		{"100/s", 100, time.Second, ""},
		{"10r/s", 10, time.Second, ""},
		{" 5/m ", 5, time.Minute, ""},
		{"1000/h", 1000, time.Hour, ""},
		{"100", 0, 0, "want N/s"},
		{"100/d", 0, 0, "period"},
		{"0/s", 0, 0, "whole number"},
		{"-1/s", 0, 0, "whole number"},
		{"1.5/s", 0, 0, "whole number"},
		{"2000000/s", 0, 0, "whole number"},
	} {
		n, per, err := ParseRate(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseRate(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || n != c.n || per != c.per {
			t.Errorf("ParseRate(%q) = %d, %v, %v; want %d, %v", c.in, n, per, err, c.n, c.per)
		}
	}
}

const goodHash = "$2y$05$abcdefghijklmnopqrstuu5xOnS3DvNrxI7kXz6fpXe9cl0IG7c1e"

func TestParseHtpasswd(t *testing.T) {
	entries, err := ParseHtpasswd([]byte("# c\n\nalice:" + goodHash + "\r\nbob:" + strings.Replace(goodHash, "$2y$", "$2b$", 1) + "  \n"))
	if err != nil || len(entries) != 2 || entries[0].User != "alice" || entries[1].Line != 4 || entries[1].Hash[:4] != "$2b$" {
		t.Errorf("got %+v, %v", entries, err)
	}
	for _, c := range []struct{ line, want string }{
		{"x:$apr1$a$b", "Apache MD5"},
		{"x:{SHA}abc=", "SHA-1"},
		{"x:$1$abc$def", "MD5-crypt"},
		{"x:$6$abc$def", "SHA-crypt"},
		{"x:$9$abc", "unknown"},
		{"x:abJnggxhB/yWI", "DES crypt"},
		{"x:secret", "plain-text"},
		{"x:$2y$99$" + goodHash[7:], "malformed"},
		{"x", "want user:hash"},
		{":" + goodHash, "want user:hash"},
	} {
		_, err := ParseHtpasswd([]byte(c.line + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: error %v, want %q on line 1", c.line, err, c.want)
		}
	}
}

func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:" + goodHash + "\n"))
	f.Add([]byte("# c\nbob:$apr1$x$y\n\n"))
	f.Add([]byte("a:b:c\nd"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseHtpasswd(data)
		for _, e := range entries {
			if CheckPasswordHash(e.User, e.Hash) != nil {
				t.Fatalf("accepted a bad entry %+v (err %v)", e, err)
			}
		}
	})
}

func FuzzParseRate(f *testing.F) {
	f.Add("100/s")
	f.Add("10r/m")
	f.Add("/")
	f.Fuzz(func(t *testing.T, s string) {
		n, per, err := ParseRate(s)
		if err == nil && (n < 1 || n > 1_000_000 || per < time.Second) {
			t.Fatalf("ParseRate(%q) = %d, %v", s, n, per)
		}
	})
}
