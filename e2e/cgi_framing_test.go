package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCGIContentLengthFramingThroughBinary: through the real server (fast
// path listener handing the connection to net/http, access log, route
// layers), a script writing past its own Content-Length gives the client
// exactly Content-Length bytes, then the connection closes: the pipelined
// request behind it gets no answer made of the script's excess. The error
// log names the script.
func TestCGIContentLengthFramingThroughBinary(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	writeFiles(t, dir, map[string]string{
		"cgi-bin/over.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\nhello'\nsleep 0.1\nprintf 'HTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\n\\r\\nforged'\n",
		"cgi-bin/ok.sh":   "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nsecond'\n",
	})
	for _, f := range []string{"cgi-bin/over.sh", "cgi-bin/ok.sh"} {
		os.Chmod(filepath.Join(dir, f), 0o755)
	}
	p := startConfig(t, dir, `
[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin" }
  headers = [{ add = { "X-Layer" = "on" } }]
`, 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "http://"), "/")
	start := time.Now()
	got := rawTo(t, addr, "GET /cgi-bin/over.sh HTTP/1.1\r\nHost: x\r\n\r\nGET /cgi-bin/ok.sh HTTP/1.1\r\nHost: x\r\n\r\n", 5*time.Second)
	took := time.Since(start)
	head, body, _ := strings.Cut(got, "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200") || !strings.Contains(head, "Content-Length: 5") || body != "hello" {
		t.Errorf("got %q, want one response with exactly the body \"hello\"", got)
	}
	if strings.Contains(got, "forged") || strings.Contains(got, "second") {
		t.Errorf("bytes after the first response: %q", got)
	}
	if took > 4*time.Second {
		t.Errorf("the connection stayed open %s (want it closed after the response)", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Stderr.String()+p.Stdout.String(), "more body than its Content-Length") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if logs := p.Stderr.String() + p.Stdout.String(); !strings.Contains(logs, "more body than its Content-Length") || !strings.Contains(logs, "over.sh") {
		t.Errorf("no error log line naming the script:\n%s", logs)
	}
}
