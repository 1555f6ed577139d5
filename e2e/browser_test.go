package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium returns the path of Debian's chromium, failing the test when it
// is missing (CI installs it) unless -short.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testing.Short() {
		t.Skip("chromium not installed (-short)")
	}
	t.Fatal("chromium not installed: .ci/run installs it (apt-get install chromium)")
	return ""
}

// runChromium runs headless chromium with args plus url and returns stdout.
func runChromium(t *testing.T, args ...string) string {
	t.Helper()
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// TestListingInBrowser renders a directory listing in a real browser: names
// that look like markup stay text, links lead to the files, and the page
// fits a phone screen.
func TestListingInBrowser(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"site/<img src=x onerror=alert(1)>.txt": "x", "site/a&b.txt": "y", "site/docs/readme.md": "z", "site/plain.txt": "p",
	})
	p := startPortico(t, filepath.Join(dir, "site"), 1, "serve", "-b", "127.0.0.1", "0")
	dom := runChromium(t, "--dump-dom", p.URL("/"))
	if strings.Contains(dom, "<img") {
		t.Errorf("a file name became markup in the listing:\n%s", dom)
	}
	for _, want := range []string{"&lt;img src=x onerror=alert(1)&gt;.txt", "a&amp;b.txt", "docs/", "plain.txt", `name="viewport"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("listing DOM lacks %q:\n%s", want, dom)
		}
	}
	shot := filepath.Join(dir, "listing.png")
	runChromium(t, "--window-size=390,844", "--hide-scrollbars", "--screenshot="+shot, p.URL("/"))
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 2000 {
		t.Errorf("no screenshot of the listing: %v", err)
	}
	if os.Getenv("PORTICO_KEEP_SCREENSHOTS") != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(filepath.Join(os.Getenv("PORTICO_KEEP_SCREENSHOTS"), "listing.png"), data, 0o644)
	}
}

// TestErrorPageInBrowser checks the 404 page a browser shows is the
// friendly HTML page, not a stack trace or bare text.
func TestErrorPageInBrowser(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "home"})
	p := startPortico(t, dir, 1, "serve", "--browse=false", "-b", "127.0.0.1", "0")
	dom := runChromium(t, "--dump-dom", p.URL("/no/such/page"))
	if !strings.Contains(dom, "<h1>404 Not Found</h1>") {
		t.Errorf("browser 404 page:\n%s", dom)
	}
}
