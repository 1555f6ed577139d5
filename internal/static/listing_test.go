package static

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portico/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
	}
}

func TestListing(t *testing.T) {
	h, _ := newHandler(t, func(c *config.Static) { c.Browse = true }, Options{Prefix: "/files"})
	w := do(h, "GET", "/files/docs/")
	if w.Code != 200 {
		t.Fatalf("got %d, want 200", w.Code)
	}
	if got, want := w.Header().Get("Content-Type"), "text/html; charset=utf-8"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	golden(t, "listing-docs.html", w.Body.String())

	// A root without an index file is listed too.
	hr, _ := newHandler(t, func(c *config.Static) { c.Browse = true; c.Index = []string{"none.html"} }, Options{Prefix: "/files"})
	root := do(hr, "GET", "/files/")
	if root.Code != 200 {
		t.Fatalf("root: got %d, want 200", root.Code)
	}
	golden(t, "listing-root.html", root.Body.String())
	b := root.Body.String()
	for _, want := range []string{
		`<meta name="viewport"`,
		`href="./a%20b.txt">a b.txt</a>`,
		`href="./%3Cx%3E&amp;.txt">&lt;x&gt;&amp;.txt</a>`,
		`href="./sub/">sub/</a>`,
		`href="./link-sub/">link-sub/</a>`,
		`href="./link-in.txt"`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("root listing lacks %q", want)
		}
	}
	for _, absent := range []string{".env", ".git", "cgi-bin", "link-cgi", "link-out", "link-abs", "link-outdir", "link-broken", "semi;colon", "href=\"../\""} {
		if strings.Contains(b, absent) {
			t.Errorf("root listing shows %q", absent)
		}
	}
	// Folders come first, then files, each sorted.
	if i, j := strings.Index(b, ">sub/<"), strings.Index(b, ">1k.txt<"); i < 0 || j < 0 || i > j {
		t.Errorf("folders not before files: sub/ at %d, 1k.txt at %d", i, j)
	}
	if head := do(h, "HEAD", "/files/docs/"); head.Code != 200 || head.Body.Len() != 0 {
		t.Errorf("HEAD: got %d with %d body bytes", head.Code, head.Body.Len())
	}
	if w := do(h, "GET", "/files/docs"); w.Code != 301 || w.Header().Get("Location") != "/files/docs/" {
		t.Errorf("redirect: got %d %q", w.Code, w.Header().Get("Location"))
	}
	// An index file wins over the listing.
	if w := do(h, "GET", "/files/sub/"); w.Body.String() != "<p>sub</p>\n" {
		t.Errorf("index: got %q", w.Body.String())
	}
}

func TestListingDotfiles(t *testing.T) {
	h, _ := newHandler(t, func(c *config.Static) { c.Browse = true; c.Dotfiles = true }, Options{})
	b := do(h, "GET", "/docs/").Body.String()
	if !strings.Contains(b, `href="./.hidden"`) {
		t.Errorf("dotfile missing with dotfiles on:\n%s", b)
	}
}

func TestListingOff(t *testing.T) {
	h, _ := newHandler(t, nil, Options{})
	if w := do(h, "GET", "/docs/"); w.Code != 404 {
		t.Errorf("got %d, want 404", w.Code)
	}
}

func TestFormatSize(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {10 << 10, "10 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := formatSize(c.n); got != c.want {
			t.Errorf("formatSize(%d): got %q, want %q", c.n, got, c.want)
		}
	}
}
