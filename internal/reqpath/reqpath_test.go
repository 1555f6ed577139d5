package reqpath

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		// Unchanged, returned as they are.
		{"/", "/", nil},
		{"/a/b", "/a/b", nil},
		{"/a/b/", "/a/b/", nil},
		{"/.well-known/x", "/.well-known/x", nil},
		{"/a..b/c", "/a..b/c", nil},
		{"/..a/b", "/..a/b", nil},
		{"/x.", "/x.", nil},
		{"/.../x", "/.../x", nil},
		{"/my%20file.txt", "/my%20file.txt", nil},
		{"/a%2Fb", "/a%2Fb", nil},       // an encoded slash stays one segment
		{"/a%2F%2Fb", "/a%2F%2Fb", nil}, // and is never merged
		{"/%2eenv", "/%2eenv", nil},
		{"/a\\b", "/a\\b", nil},
		{"/a;b/c", "/a;b/c", nil},
		{"/;/x", "/;/x", nil},
		{"/%c0%ae%c0%ae/x", "/%c0%ae%c0%ae/x", nil}, // overlong UTF-8 is not a dot
		// RFC 3986 5.2.4 and nginx.
		{"/a/../b", "/b", nil},
		{"/a/./b", "/a/b", nil},
		{"/a/b/c/./../../g", "/a/g", nil},
		{"/a/b/.", "/a/b/", nil},
		{"/a/b/..", "/a/", nil},
		{"/a/..", "/", nil},
		{"/.", "/", nil},
		{"/./", "/", nil},
		{"/a/b/c/../d/e/../../../../f", "/f", nil},
		{"/a/b/c/../d/e/../../../../f/../.", "/", nil},
		{"/static/../admin", "/admin", nil},
		// merge_slashes.
		{"//", "/", nil},
		{"//a///b", "/a/b", nil},
		{"/a//", "/a/", nil},
		{"///////////nocgi.py/../cgi-bin/nothere.sh", "/cgi-bin/nothere.sh", nil},
		{"/a//..//b", "/b", nil}, // "//" merged first, as nginx does
		// Encoded dots are dots.
		{"/a/%2e%2e/b", "/b", nil},
		{"/a/%2E%2E/b", "/b", nil},
		{"/a/.%2e/b", "/b", nil},
		{"/a/%2e/b", "/a/b", nil},
		// Kept segments keep their escapes.
		{"/x%41/../y%3Fz/%2F/./", "/y%3Fz/%2F/", nil},
		// Above the root.
		{"/..", "", ErrAboveRoot},
		{"/../", "", ErrAboveRoot},
		{"/a/../..", "", ErrAboveRoot},
		{"/%2e%2e/secret", "", ErrAboveRoot},
		{"//..//", "", ErrAboveRoot},
		{"/a/b/c/../d/e/../../../../../f", "", ErrAboveRoot},
		// Dot pieces hidden behind separators that are not ones here.
		{"/..%2fsecret", "", ErrHiddenDot},
		{"/a%2F..%2Fb", "", ErrHiddenDot},
		{"/a%2f..", "", ErrHiddenDot},
		{"/..\\secret", "", ErrHiddenDot},
		{"/a\\..\\b", "", ErrHiddenDot},
		{"/..%5csecret", "", ErrHiddenDot},
		{"/.%5c", "", ErrHiddenDot},
		{"/..;/manager", "", ErrHiddenDot},
		{"/a/.;x", "", ErrHiddenDot},
		{"/%2e%2e;/x", "", ErrHiddenDot},
		// NUL and malformed escapes.
		{"/x%00y", "", ErrNUL},
		{"/x\x00y", "", ErrNUL},
		{"/%00/../x", "", ErrNUL},
		{"/a%zz", "", ErrEscape},
		{"/a%2", "", ErrEscape},
		{"/a%", "", ErrEscape},
		// Not a path.
		{"", "", ErrNotAbsolute},
		{"*", "", ErrNotAbsolute},
		{"a/b", "", ErrNotAbsolute},
	}
	for _, tc := range tests {
		got, err := Normalize(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestDecode(t *testing.T) {
	for in, want := range map[string]string{"/a%20b": "/a b", "/a%2Fb": "/a/b", "/plain": "/plain"} {
		if got := Decode(in); got != want {
			t.Errorf("Decode(%q) = %q, want %q", in, got, want)
		}
	}
}

// The common paths cost nothing: no allocation when nothing changes.
func TestNormalizeUnchangedAllocatesNothing(t *testing.T) {
	for _, p := range []string{"/assets/app.js", "/my%20file.txt", "/.well-known/acme-challenge/x"} {
		if n := testing.AllocsPerRun(100, func() { Normalize(p) }); n != 0 {
			t.Errorf("Normalize(%q): %v allocations, want 0", p, n)
		}
	}
}

// climbs reports whether the segments of an escaped path, with dots
// decoded, walk above the root: a reference written independently of
// Normalize.
func climbs(p string) bool {
	depth := 0
	for _, seg := range strings.Split(p, "/") {
		d, err := url.PathUnescape(seg)
		if err != nil {
			d = seg
		}
		switch d {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// hasDotPiece reports whether s has a "." or ".." piece when '/' and '\\'
// both separate.
func hasDotPiece(s string) bool {
	for _, piece := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' }) {
		if piece == "." || piece == ".." {
			return true
		}
	}
	return false
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"/", "/a/../b", "/a/./b", "//a//b/", "/..", "/a/%2e%2e/b", "/..%2fx", "/a\\..\\b",
		"/..;/x", "/x%00", "/%zz", "/.well-known/x", "/a%2F%2Fb", "/a/b/c/../../..", "/%2E/",
		"///////////nocgi.py/../cgi-bin/nothere.sh", "/x%41/../y%3Fz/%2F/./",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			if out != "" {
				t.Fatalf("Normalize(%q) = %q with error %v", in, out, err)
			}
			if strings.HasPrefix(in, "/") && !strings.ContainsAny(in, "%\\;\x00") && !climbs(in) {
				t.Fatalf("Normalize(%q) refused a plain path that stays under the root: %v", in, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("Normalize(%q) = %q: does not start with /", in, out)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("Normalize(%q) = %q: holds //", in, out)
		}
		for _, seg := range strings.Split(out, "/") {
			if d, _ := url.PathUnescape(seg); d == "." || d == ".." || seg == "." || seg == ".." {
				t.Fatalf("Normalize(%q) = %q: holds the dot segment %q", in, out, seg)
			}
		}
		dec := Decode(out)
		if hasDotPiece(dec) || strings.IndexByte(dec, 0) >= 0 {
			t.Fatalf("Normalize(%q) = %q: decoded %q holds a dot piece or NUL", in, out, dec)
		}
		if again, err := Normalize(out); again != out || err != nil {
			t.Fatalf("not idempotent: Normalize(%q) = %q, Normalize(that) = %q, %v", in, out, again, err)
		}
		if climbs(in) {
			t.Fatalf("Normalize(%q) = %q: the input climbs above the root", in, out)
		}
		// Every segment kept is one of the input's, escapes and all.
		inSegs := map[string]bool{}
		for _, s := range strings.Split(in, "/") {
			inSegs[s] = true
		}
		for _, s := range strings.Split(out, "/") {
			if !inSegs[s] {
				t.Fatalf("Normalize(%q) = %q: segment %q is not the client's", in, out, s)
			}
		}
		// The same place as path.Clean finds, for paths without escapes
		// (path.Clean has no trailing slash and would clamp at the root).
		if !strings.Contains(in, "%") && path.Clean(in) != path.Clean(out) {
			t.Fatalf("Normalize(%q) = %q, path.Clean says %q", in, out, path.Clean(in))
		}
		if out != in && len(out) > len(in) {
			t.Fatalf("Normalize(%q) = %q: longer than its input", in, out)
		}
	})
}
