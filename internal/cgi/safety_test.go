package cgi

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Paths that try to leave the root, reach a file's source, or run what is
// not a regular executable file under it (LESSONS.md: CVE-2021-41773 and
// friends, source disclosure).
func TestTraversalAndSource(t *testing.T) {
	outer := newRoot(t)
	root := filepath.Join(outer, "cgi-bin")
	os.Mkdir(root, 0o755)
	writeFile(t, outer, "outside.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nOUTSIDE'\n", 0o755)
	writeFile(t, outer, "outside.txt", "OUTSIDE", 0o644)
	linkHelper(t, root, "env")
	writeFile(t, root, "secret.txt", "SECRET source", 0o644)
	writeFile(t, root, "secret.py", "SECRET = 'source'", 0o644)
	writeFile(t, root, "sub/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nsub ok'\n", 0o755)
	writeFile(t, root, ".hidden.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nHIDDEN'\n", 0o755)
	writeFile(t, root, ".git/hook.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nHIDDEN'\n", 0o755)
	os.Symlink("/etc/passwd", filepath.Join(root, "link-passwd"))
	os.Symlink("/bin", filepath.Join(root, "link-bin"))
	os.Symlink("../outside.sh", filepath.Join(root, "link-out.sh"))
	os.Symlink("env", filepath.Join(root, "link-in"))
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, testCfg(root), Options{})

	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/cgi-bin/../outside.sh", 404},
		{"/cgi-bin/%2e%2e/outside.sh", 404},
		{"/cgi-bin/.%2e/outside.sh", 404},
		{"/cgi-bin/%2E%2E/outside.txt", 404},
		{"/cgi-bin/..%2foutside.sh", 404},
		{"/cgi-bin/%2e%2e%2foutside.sh", 404},
		{"/cgi-bin/..%5coutside.sh", 404},
		{"/cgi-bin/..\\outside.sh", 404},
		{"/cgi-bin/%252e%252e/outside.sh", 404},
		{"/cgi-bin/%c0%ae%c0%ae/outside.sh", 404},
		{"/cgi-bin/sub/../../outside.sh", 404},
		{"/cgi-bin/sub%2fok.sh", 404},
		{"/cgi-bin/env%00.txt", 404},
		{"/cgi-bin/env/../secret.txt", 404},
		{"/cgi-bin/./env", 404},
		{"/cgi-bin/link-passwd", 404},
		{"/cgi-bin/link-bin/sh", 404},
		{"/cgi-bin/link-out.sh", 404},
		{"/cgi-bin/.hidden.sh", 404},
		{"/cgi-bin/.git/hook.sh", 404},
		{"/cgi-bin/secret.txt", 403},
		{"/cgi-bin/secret.py", 403},
		{"/cgi-bin/secret.txt/", 403},
		{"/cgi-bin/secret.txt/x", 403},
		{"/cgi-bin/secret.txt.", 404},
		{"/cgi-bin/secret.txt%20", 404},
		{"/cgi-bin/secret.txt%00", 404},
		{"/cgi-bin/SECRET.TXT", 404},
		{"/cgi-bin/secret.txt;.sh", 404},
		{"/cgi-bin/secret.txt::$DATA", 404},
		{"/cgi-bin/fifo", 403},
		{"/cgi-bin/sub", 403},
		{"/cgi-bin/sub/", 403},
		{"/cgi-bin/", 403},
		{"/cgi-bin", 403},
		{"/cgi-binx/env", 404},
		{"/other/env", 404},
		{"/cgi-bin/sub/ok.sh", 200},
		{"/cgi-bin//sub//ok.sh", 200},
		{"/cgi-bin/link-in", 200},
	} {
		res := f.get(t, tc.path)
		if res.status != tc.status {
			t.Errorf("%s: got %d, want %d", tc.path, res.status, tc.status)
		}
		for _, leak := range []string{"OUTSIDE", "SECRET", "HIDDEN", "root:x:0"} {
			if strings.Contains(res.body, leak) {
				t.Errorf("%s: body leaks %q: %q", tc.path, leak, res.body)
			}
		}
	}
}

// Shellshock: header values in the environment of a bash script run nothing.
func TestShellshock(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("no bash")
	}
	root := newRoot(t)
	writeFile(t, root, "b.sh", "#!/bin/bash\necho 'Content-Type: text/plain'\necho\necho ok\n", 0o755)
	f := newFixture(t, testCfg(root), Options{})
	res := f.get(t, "/cgi-bin/b.sh",
		"User-Agent", "() { :;}; echo PWNED",
		"X-Test", "() { :;}; echo Content-Type: text/x-pwned; echo; echo PWNED",
		"Cookie", "() { _; } >_[$($())] { echo PWNED; }")
	if res.status != 200 || res.body != "ok\n" || strings.Contains(res.header.Get("Content-Type"), "pwned") {
		t.Errorf("got %d %q %v", res.status, res.body, res.header)
	}
}

// Shell metacharacters in the query and the path reach the script as
// plain data; argv is only the script (no "indexed" query, RFC 3875 4.4).
func TestMetacharactersAreData(t *testing.T) {
	root := newRoot(t)
	script := linkHelper(t, root, "env")
	f := newFixture(t, testCfg(root), Options{})
	for _, tc := range []struct{ target, query, pathInfo string }{
		{"/cgi-bin/env?-s", "-s", ""},
		{"/cgi-bin/env?-d+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input", "-d+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input", ""},
		{"/cgi-bin/env?;id", ";id", ""},
		{"/cgi-bin/env?$(id)`id`|id&&id", "$(id)`id`|id&&id", ""},
		{"/cgi-bin/env/;id/$(id)/%60id%60?x", "x", "/;id/$(id)/`id`"},
		{"/cgi-bin/env/a%20b%0Ac", "", "/a b\nc"},
	} {
		rep := f.report(t, "GET", tc.target, nil)
		if len(rep.Args) != 1 || rep.Args[0] != script {
			t.Errorf("%s: argv %q, want just the script", tc.target, rep.Args)
		}
		if rep.Env["QUERY_STRING"] != tc.query {
			t.Errorf("%s: QUERY_STRING %q, want %q", tc.target, rep.Env["QUERY_STRING"], tc.query)
		}
		if rep.Env["PATH_INFO"] != tc.pathInfo {
			t.Errorf("%s: PATH_INFO %q, want %q", tc.target, rep.Env["PATH_INFO"], tc.pathInfo)
		}
	}
}

func TestSafePath(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"/cgi-bin/x", true},
		{"/cgi-bin/x/y.z", true},
		{"/cgi-bin/..x", true},
		{"/cgi-bin/../x", false},
		{"/cgi-bin/x/..", false},
		{"/cgi-bin/./x", false},
		{"/cgi-bin/x\\y", false},
		{"/cgi-bin/x\x00", false},
	} {
		if got := safePath(tc.in); got != tc.ok {
			t.Errorf("safePath(%q): got %v, want %v", tc.in, got, tc.ok)
		}
	}
}
