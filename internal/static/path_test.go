package static

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanTraversalPath(t *testing.T) {
	for _, c := range []struct {
		path, prefix string
		dotfiles     bool
		rel          string
		slash, ok    bool
	}{
		{"/", "", false, ".", true, true},
		{"/a/b.txt", "", false, "a/b.txt", false, true},
		{"/a/b/", "", false, "a/b", true, true},
		{"/a//b", "", false, "a/b", false, true},
		{"//a", "", false, "a", false, true},
		{"/static", "/static", false, ".", false, true},
		{"/static/", "/static", false, ".", true, true},
		{"/static/x", "/static", false, "x", false, true},
		{"/staticx", "/static", false, "", false, false},
		{"/other", "/static", false, "", false, false},
		{"", "", false, "", false, false},
		{"a/b", "", false, "", false, false},
		{"/..", "", false, "", false, false},
		{"/../x", "", false, "", false, false},
		{"/a/../x", "", false, "", false, false},
		{"/a/..", "", false, "", false, false},
		{"/a/./x", "", false, "", false, false},
		{"/a/.", "", false, "", false, false},
		{"/a/..", "", true, "", false, false},
		{"/.env", "", false, "", false, false},
		{"/.env", "", true, ".env", false, true},
		{"/a/.git/config", "", false, "", false, false},
		{"/a/x.", "", false, "a/x.", false, true},
		{"/a/..x", "", false, "", false, false},
		{"/a/..x", "", true, "a/..x", false, true},
		{"/a\\..\\x", "", false, "", false, false},
		{"/a\x00.txt", "", false, "", false, false},
		{"/a;b", "", false, "", false, false},
		{"/a\nb", "", false, "", false, false},
		{"/a\x7fb", "", false, "", false, false},
		{"/\xc0\xae\xc0\xae/x", "", false, "", false, false},
		{"/\xff", "", false, "", false, false},
		{"/ünï.txt", "", false, "ünï.txt", false, true},
		{"/%2e%2e", "", false, "%2e%2e", false, true}, // a literal name: Path is already decoded
		{"/.well-known/x", "/.well-known", false, "x", false, true},
		{"/.well-known/.x", "/.well-known", false, "", false, false},
	} {
		rel, slash, ok := cleanTraversalPath(c.path, c.prefix, c.dotfiles)
		if rel != c.rel || slash != c.slash || ok != c.ok {
			t.Errorf("cleanTraversalPath(%q, %q, %v): got %q %v %v, want %q %v %v", c.path, c.prefix, c.dotfiles, rel, slash, ok, c.rel, c.slash, c.ok)
		}
	}
}

func TestHasEncodedSeparator(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want bool
	}{
		{"", false},
		{"/a/b", false},
		{"/a%20b", false},
		{"/a%2fb", true},
		{"/a%2Fb", true},
		{"/a%5cb", true},
		{"/a%5Cb", true},
		{"/a%00", true},
		{"/a%252fb", false},
		{"/a%2", false},
		{"%2f", true},
	} {
		if got := hasEncodedSeparator(c.raw); got != c.want {
			t.Errorf("hasEncodedSeparator(%q): got %v, want %v", c.raw, got, c.want)
		}
	}
}

func TestHiddenRel(t *testing.T) {
	hidden := []string{"cgi-bin", "a/b"}
	for _, c := range []struct {
		rel  string
		want bool
	}{
		{"cgi-bin", true},
		{"cgi-bin/x.py", true},
		{"cgi-binx", false},
		{"cgi-binx/y", false},
		{"a", false},
		{"a/b", true},
		{"a/b/c", true},
		{"a/bc", false},
		{".", false},
	} {
		if got := hiddenRel(c.rel, hidden); got != c.want {
			t.Errorf("hiddenRel(%q): got %v, want %v", c.rel, got, c.want)
		}
	}
	if !hiddenRel("anything", []string{"."}) {
		t.Errorf("hiddenRel with \".\": got false, want true")
	}
}

// FuzzCleanTraversalPath asserts that whatever comes in, an accepted path
// is local, has no dot segments, backslashes, NULs or semicolons, and is
// valid UTF-8.
func FuzzCleanTraversalPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/../x", "/a/./b", "/.env", "//a//b/", "/a\\b", "/\xc0\xae", "/a;b", "/ü/x", "/a/..", "/..."} {
		f.Add(s, "", false)
		f.Add(s, "/p", true)
	}
	f.Fuzz(func(t *testing.T, p, prefix string, dotfiles bool) {
		rel, _, ok := cleanTraversalPath(p, prefix, dotfiles)
		if !ok {
			return
		}
		if rel != "." && !filepath.IsLocal(rel) {
			t.Fatalf("%q -> %q: not local", p, rel)
		}
		if strings.ContainsAny(rel, "\\\x00;") || !utf8.ValidString(rel) {
			t.Fatalf("%q -> %q: bad byte", p, rel)
		}
		for _, seg := range strings.Split(rel, "/") {
			if seg == "" || seg == ".." || (seg == "." && rel != ".") {
				t.Fatalf("%q -> %q: bad segment %q", p, rel, seg)
			}
			if !dotfiles && rel != "." && strings.HasPrefix(seg, ".") {
				t.Fatalf("%q -> %q: dotfile", p, rel)
			}
		}
	})
}

// FuzzHasEncodedSeparator compares the scanner with a plain definition.
func FuzzHasEncodedSeparator(f *testing.F) {
	for _, s := range []string{"/a%2fb", "/%5C", "%00", "/a%2", "/%%2f", "/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l := strings.ToLower(raw)
		want := strings.Contains(l, "%2f") || strings.Contains(l, "%5c") || strings.Contains(l, "%00")
		if got := hasEncodedSeparator(raw); got != want {
			t.Fatalf("hasEncodedSeparator(%q): got %v, want %v", raw, got, want)
		}
	})
}

// TestFailMapping checks the one place where errors become statuses.
func TestFailMapping(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	var logged strings.Builder
	h.log = slog.New(slog.NewTextHandler(&logged, nil))
	for _, c := range []struct {
		err    error
		status int
		logs   bool
	}{
		{fs.ErrNotExist, 404, false},
		{&fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}, 404, false},
		{fs.ErrPermission, 403, false},
		{&fs.PathError{Op: "open", Path: "x", Err: fs.ErrPermission}, 403, false},
		{io.ErrUnexpectedEOF, 500, true},
	} {
		logged.Reset()
		w := httptest.NewRecorder()
		h.fail(w, httptest.NewRequest("GET", "/x", nil), c.err)
		if w.Code != c.status {
			t.Errorf("%v: got %d, want %d", c.err, w.Code, c.status)
		}
		if got := logged.Len() > 0; got != c.logs {
			t.Errorf("%v: logged %v, want %v", c.err, got, c.logs)
		}
		if strings.Contains(w.Body.String(), c.err.Error()) {
			t.Errorf("%v: error detail leaked to the client: %q", c.err, w.Body.String())
		}
	}
}

func TestClassify(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	_, escape := h.root.Stat("link-out.txt")
	_, parent := h.root.Stat("../x")
	_, notdir := h.root.Stat("1k.txt/x")
	for _, err := range []error{escape, parent, notdir} {
		if got := classify(err); !errors.Is(got, fs.ErrNotExist) {
			t.Errorf("classify(%v): got %v, want not-exist", err, got)
		}
	}
	if got := classify(io.ErrUnexpectedEOF); got != io.ErrUnexpectedEOF {
		t.Errorf("classify(EOF): got %v", got)
	}
}
