package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickModeCGI: `portico serve --cgi` runs executables under /cgi-bin/
// and /htbin/ (and .py files with Python, as http.server did), never shows
// their source, and passes the query as data, never as arguments.
func TestQuickModeCGI(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	writeFiles(t, dir, map[string]string{
		"index.html":       "home",
		"cgi-bin/env.sh":   "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"args=$# query=$QUERY_STRING proxy=${HTTP_PROXY:-none} port=$SERVER_PORT script=$SCRIPT_NAME info=$PATH_INFO\"\n",
		"htbin/hi.sh":      "#!/bin/sh\nprintf 'Status: 201 Created\\r\\nContent-Type: text/plain\\r\\n\\r\\nhtbin\\n'\n",
		"cgi-bin/hello.py": "print('Content-Type: text/plain')\nprint()\nprint('python says hi')\n",
		"cgi-bin/data.txt": "SECRET SOURCE",
	})
	for _, f := range []string{"cgi-bin/env.sh", "htbin/hi.sh"} {
		os.Chmod(filepath.Join(dir, f), 0o755)
	}
	p := startPortico(t, dir, 1, "serve", "--cgi", "-b", "127.0.0.1", "0")
	port := p.URLs[0][strings.LastIndex(p.URLs[0], ":")+1 : len(p.URLs[0])-1]

	resp, body := get(t, p.URL("/cgi-bin/env.sh/extra/path?-s+;id+$(id)"), "Proxy", "http://evil:1", "Host", "x:9999")
	want := "args=0 query=-s+;id+$(id) proxy=none port=" + port + " script=/cgi-bin/env.sh info=/extra/path\n"
	if resp.StatusCode != 200 || body != want {
		t.Errorf("env.sh: %d %q, want %q", resp.StatusCode, body, want)
	}
	if resp, body := get(t, p.URL("/htbin/hi.sh")); resp.StatusCode != 201 || body != "htbin\n" {
		t.Errorf("htbin: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, p.URL("/cgi-bin/hello.py")); resp.StatusCode != 200 || body != "python says hi\n" {
		t.Errorf("hello.py: %d %q", resp.StatusCode, body)
	}
	// Sources are never sent: not through the cgi route, not through the
	// static route that covers the same folder.
	for _, path := range []string{"/cgi-bin/data.txt", "/cgi-bin/env.sh.", "/cgi-bin/env.sh%20", "/cgi-bin/", "/cgi-bin"} {
		if resp, body := get(t, p.URL(path)); strings.Contains(body, "SECRET") || strings.Contains(body, "printf") {
			t.Errorf("GET %s: %d sent a script's source: %q", path, resp.StatusCode, body)
		}
	}
}
