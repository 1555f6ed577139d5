package fastcgi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portico/internal/config"
)

// FuzzResolve checks the promises of resolve for any request path: a
// script that runs is a regular file inside the root whose name ends in
// split_path, reached through no dot segment or symlink out of the root,
// SCRIPT_NAME + PATH_INFO is the path asked for (or the index runs); and
// no name ending in split_path, whatever its case, goes to the static
// fallback.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"/app/a.php", "/app/a.php/x/y", "/app/blog/2024", "/app/upload/evil.jpg/x.php", "/app/X.PHP",
		"/app/link.php", "/app/sub/", "/app/sub", "/app/.env", "/app/../outside.php", "/app/dir.php/keep.txt",
		"/app/style.css", "/app//a.php", "/app/sub/./b.php", "/app\x00.php",
	} {
		f.Add(s)
	}
	root := testRoot(f)
	cfg := config.FastCGI{Upstream: "unix:/nonexistent.sock", Root: root}
	cfg.SetDefaults()
	h, err := New(cfg, Options{Prefix: "/app"})
	if err != nil {
		f.Fatal(err)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		tg := h.resolve(path)
		switch tg.kind {
		case runScript:
			file := filepath.Join(root, filepath.FromSlash(tg.rel))
			real, err := filepath.EvalSymlinks(file)
			if err != nil {
				t.Fatalf("%q runs %q: %v", path, tg.rel, err)
			}
			if rel, err := filepath.Rel(realRoot, real); err != nil || !filepath.IsLocal(rel) {
				t.Fatalf("%q runs %q outside the root (%s)", path, tg.rel, real)
			}
			if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%q runs %q, not a regular file", path, tg.rel)
			}
			if !strings.HasSuffix(tg.rel, ".php") {
				t.Fatalf("%q runs %q, not a script", path, tg.rel)
			}
			for _, seg := range strings.Split(tg.rel, "/") {
				if seg == "" || seg[0] == '.' {
					t.Fatalf("%q runs %q through a dot or empty segment", path, tg.rel)
				}
			}
			if tg.name != "/app/"+tg.rel {
				t.Fatalf("%q: SCRIPT_NAME %q for %q", path, tg.name, tg.rel)
			}
			if tg.name+tg.pathInfo != path && !strings.HasSuffix(tg.rel, "index.php") {
				t.Fatalf("%q split into %q + %q", path, tg.name, tg.pathInfo)
			}
		case serveFile:
			segs := strings.Split(strings.TrimSuffix(path, "/"), "/")
			if hasFoldedSuffix(segs[len(segs)-1], ".php") {
				if fi, err := os.Stat(filepath.Join(root, strings.TrimPrefix(path, "/app"))); err == nil && fi.Mode().IsRegular() {
					t.Fatalf("%q: a script's source goes to the static handler", path)
				}
			}
		}
	})
}
