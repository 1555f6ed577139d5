package cgi

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The programs in examples/cgi-bin, run for real: python3, sh, and C
// compiled here with cc.
func TestExamples(t *testing.T) {
	src := filepath.Join("..", "..", "examples", "cgi-bin")
	root := newRoot(t)
	for _, name := range []string{"sample.py", "hello.sh", "hello.c"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o755)
		if strings.HasSuffix(name, ".c") {
			mode = 0o644
		}
		writeFile(t, root, name, string(b), mode)
	}
	data := newRoot(t)
	os.Chmod(data, 0o777) // the scripts run as nobody
	cfg := testCfg(root)
	cfg.Env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	cfg.Env["SAMPLE_CGI_DATA"] = filepath.Join(data, "message.txt")
	f := newFixture(t, cfg, Options{})

	t.Run("sample.py", func(t *testing.T) {
		if _, err := exec.LookPath("python3"); err != nil {
			t.Skip("no python3")
		}
		res := f.get(t, "/cgi-bin/sample.py")
		if res.status != 200 || !strings.Contains(res.body, "<form method=\"post\" action=\"/cgi-bin/sample.py\">") ||
			!strings.Contains(res.body, "No message yet") || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
			t.Fatalf("first visit: %d %q\nlogs:\n%s", res.status, res.body, f.logs)
		}
		evil := `<script>alert("x")</script> & more`
		form := "message=" + url.QueryEscape(evil)
		res = f.do(t, "POST", "/cgi-bin/sample.py", strings.NewReader(form), "Content-Type", "application/x-www-form-urlencoded")
		if res.status != 200 || !strings.Contains(res.body, "your message is saved") {
			t.Fatalf("post: %d %q\nlogs:\n%s", res.status, res.body, f.logs)
		}
		res = f.do(t, "POST", "/cgi-bin/sample.py", strings.NewReader("message=second"), "Content-Type", "application/x-www-form-urlencoded")
		if !strings.Contains(res.body, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more") || strings.Contains(res.body, "<script>") {
			t.Errorf("previous message not shown escaped: %q", res.body)
		}
		res = f.get(t, "/cgi-bin/sample.py")
		if !strings.Contains(res.body, "<blockquote>second</blockquote>") {
			t.Errorf("previous message: %q", res.body)
		}
	})

	t.Run("hello.sh", func(t *testing.T) {
		res := f.get(t, "/cgi-bin/hello.sh/p?q=$(id)")
		for _, want := range []string{"Hello from a shell script!", "PATH_INFO=/p\n", "QUERY_STRING=q=$(id)\n", "REQUEST_METHOD=GET\n"} {
			if !strings.Contains(res.body, want) {
				t.Errorf("hello.sh: body %q lacks %q", res.body, want)
			}
		}
	})

	t.Run("hello.c", func(t *testing.T) {
		cc, err := exec.LookPath("cc")
		if err != nil {
			t.Skip("no C compiler")
		}
		out, err := exec.Command(cc, "-O2", "-o", filepath.Join(root, "hello"), filepath.Join(root, "hello.c")).CombinedOutput()
		if err != nil {
			t.Fatalf("cc: %v\n%s", err, out)
		}
		res := f.get(t, "/cgi-bin/hello")
		if res.status != 200 || res.body != "Hello, world!\n" || res.header.Get("Content-Type") != "text/plain" {
			t.Errorf("hello: %d %q %v", res.status, res.body, res.header)
		}
		// The source next to it is never served.
		if res := f.get(t, "/cgi-bin/hello.c"); res.status != 403 || strings.Contains(res.body, "#include") {
			t.Errorf("hello.c: %d %q", res.status, res.body)
		}
	})
}
