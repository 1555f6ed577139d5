package static

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// fixedTime is the mtime of every fixture file, so ETags and listings are
// stable.
var fixedTime = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// bigSize is larger than smallFileLimit, so big.bin is served from disk.
const bigSize = 200 << 10

func bigContent() []byte {
	b := make([]byte, bigSize)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// fixture builds a site folder and, beside it, an "outside" folder with a
// secret that must never be served.
func fixture(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "site")
	outside = filepath.Join(base, "outside")
	files := map[string]string{
		"index.html":            "<h1>home</h1>\n",
		"1k.txt":                strings.Repeat("x", 1023) + "\n",
		"style.css":             "body{}\n",
		"app.js":                "console.log('plain')\n",
		"app.js.br":             "BR-BYTES",
		"app.js.gz":             "GZ-BYTES",
		"app.js.zst":            "ZSTD-BYTES",
		"only-gz.css":           "a{}\n",
		"only-gz.css.gz":        "GZ",
		"noext":                 "<!DOCTYPE html><html><body>sniffed</body></html>",
		"binary":                "\x00\x01\x02\x03binary",
		"data.wasm":             "\x00asm",
		"digits.txt":            "0123456789",
		"empty.txt":             "",
		"a b.txt":               "space",
		"<x>&.txt":              "markup",
		"semi;colon.txt":        "semi",
		"sub/index.html":        "<p>sub</p>\n",
		"sub/file.txt":          "in sub",
		"docs/readme.txt":       "readme",
		"docs/zz.txt":           "zz",
		"docs/Adir/x.txt":       "x",
		"docs/.hidden":          "hidden",
		"empty/.keep":           "",
		".env":                  "SECRET=1",
		".git/config":           "[core]",
		".well/known.txt":       "dot dir",
		"cgi-bin/script.py":     "#!/usr/bin/env python3\nprint('source')\n",
		"cgi-bin/index.html":    "cgi index",
		"spa/index.html":        "<p>spa sub</p>",
		"assets/app.css":        "asset",
		"ünï.txt":               "utf8 name",
		"../outside/secret.txt": "TOP SECRET",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "big.bin"), bigContent(), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"link-in.txt":    "1k.txt",
		"link-sub":       "sub",
		"link-out.txt":   "../outside/secret.txt",
		"link-abs.txt":   filepath.Join(outside, "secret.txt"),
		"link-outdir":    "../outside",
		"link-cgi.py":    "cgi-bin/script.py",
		"link-broken":    "nowhere",
		"docs/link-up":   "../../outside",
		"docs/link-file": "../1k.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	// Fix every mtime (files and folders) for stable ETags and listings.
	filepath.Walk(filepath.Dir(root), func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			os.Chtimes(p, fixedTime, fixedTime)
		}
		return nil
	})
	return root, outside
}

func newHandler(t testing.TB, mod func(*config.Static), opts Options) (*Handler, string) {
	t.Helper()
	root, _ := fixture(t)
	cfg := config.Static{Root: root, Index: []string{"index.html"}}
	cfg.Hide = []string{filepath.Join(root, "cgi-bin")}
	if mod != nil {
		mod(&cfg)
	}
	cfg.SetDefaults()
	h, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, root
}

// do runs one request through h with a recorder. target is sent as the
// request-target, unchanged.
func do(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// body reads r to the end.
func body(t testing.TB, r io.Reader) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
