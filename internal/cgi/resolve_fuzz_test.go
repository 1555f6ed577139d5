package cgi

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"portico/internal/config"
)

// FuzzResolve checks resolve's promise on any request path: what it picks
// to run is a regular file inside the root (symlinks resolved), never a
// dotfile, and SCRIPT_NAME + PATH_INFO give back the request path.
func FuzzResolve(f *testing.F) {
	outer := f.TempDir()
	root := filepath.Join(outer, "cgi")
	for _, d := range []string{"sub/deeper", ".git"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for name, mode := range map[string]os.FileMode{
		"run.sh": 0o755, "sub/deeper/x.cgi": 0o755, "data.txt": 0o644, "page.py": 0o644, ".git/hook": 0o755,
	} {
		os.WriteFile(filepath.Join(root, name), []byte("#!/bin/sh\n"), mode)
	}
	os.WriteFile(filepath.Join(outer, "outside.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("../outside.sh", filepath.Join(root, "out.sh"))
	os.Symlink("/bin", filepath.Join(root, "bin"))
	os.Symlink("run.sh", filepath.Join(root, "in.sh"))
	syscall.Mkfifo(filepath.Join(root, "fifo"), 0o755)
	h, err := New(config.CGI{Root: root, User: "root", Interpreters: map[string]string{".py": "/bin/sh"}}, Options{Prefix: "/cgi"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.fsroot.Close() })
	realRoot, _ := filepath.EvalSymlinks(root)

	for _, s := range []string{
		"/cgi/run.sh", "/cgi/run.sh/a/b", "/cgi/sub/deeper/x.cgi/p", "/cgi/../outside.sh", "/cgi/%2e%2e/outside.sh",
		"/cgi/out.sh", "/cgi/bin/sh", "/cgi/in.sh", "/cgi/.git/hook", "/cgi/fifo", "/cgi/data.txt", "/cgi/page.py/x",
		"/cgi//run.sh", "/cgi/sub%2fdeeper/x.cgi", "/cgi/run.sh%00", "/cgi/run.sh\\..\\x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Path == "" {
			return
		}
		r := &http.Request{Method: "GET", URL: u}
		s, status := h.resolve(r)
		if s == nil {
			if status != 403 && status != 404 {
				t.Fatalf("%q: status %d", target, status)
			}
			return
		}
		real, err := filepath.EvalSymlinks(s.file)
		if err != nil || !strings.HasPrefix(real, realRoot+"/") {
			t.Fatalf("%q: runs %q (%v), outside %q", target, real, err, realRoot)
		}
		fi, err := os.Stat(real)
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%q: runs %q, not a regular file", target, real)
		}
		if fi.Mode()&0o111 == 0 && s.prog == s.file {
			t.Fatalf("%q: execs a non-executable file", target)
		}
		for _, seg := range strings.Split(s.rel, "/") {
			if seg == "" || seg[0] == '.' {
				t.Fatalf("%q: script path %q has segment %q", target, s.rel, seg)
			}
		}
		if got := s.name + s.pathInfo; strings.ReplaceAll(u.Path, "//", "/") != strings.ReplaceAll(got, "//", "/") &&
			!strings.Contains(u.Path, "//") {
			t.Fatalf("%q: SCRIPT_NAME %q + PATH_INFO %q != %q", target, s.name, s.pathInfo, u.Path)
		}
		if len(s.args) == 0 || s.args[len(s.args)-1] != s.file {
			t.Fatalf("%q: argv %q", target, s.args)
		}
	})
}
