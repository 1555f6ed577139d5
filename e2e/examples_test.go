package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleSite runs the README's first command's config (examples/site)
// on a free port: the page, a CGI script, and the config file never served.
func TestExampleSite(t *testing.T) {
	dir := t.TempDir()
	// Scripts run as nobody when the tests run as root: open the folders.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	if out, err := exec.Command("cp", "-a", "../examples/site/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v %s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "portico.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(cfg), `listen = ["127.0.0.1:8080"]`, `listen = ["127.0.0.1:0"]`, 1)
	writeFiles(t, dir, map[string]string{"portico.toml": s})
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	if resp, body := get(t, p.URL("/")); resp.StatusCode != 200 || !strings.Contains(body, "It works.") {
		t.Errorf("GET /: %d %.200q", resp.StatusCode, body)
	}
	if resp, body := get(t, p.URL("/cgi-bin/hello.sh?name=x")); resp.StatusCode != 200 || !strings.Contains(body, "QUERY_STRING=name=x") {
		t.Errorf("GET /cgi-bin/hello.sh: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, p.URL("/files/")); resp.StatusCode != 200 {
		t.Errorf("GET /files/ (listing): %d", resp.StatusCode)
	}
	if resp, _ := get(t, p.URL("/css/style.css")); resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("style.css Content-Type %q", resp.Header.Get("Content-Type"))
	}
}
