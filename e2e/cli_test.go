package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOwnLogIsJSONWithLogFormatJSON: with log_format = "json", every line
// portico writes of its own (startup lines on stdout, reload failure and
// shutdown on stderr) is one JSON object, and the harness still finds the
// listener in the serving line.
func TestOwnLogIsJSONWithLogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
[server]
log_format = "json"
access_log = "off"
admin = "127.0.0.1:%d"

[[site]]
name = "json-site"
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, freePort(t))
	writeFiles(t, dir, map[string]string{"public/index.html": "hi", "portico.toml": cfg})
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stdout.String(), "admin on") })
	writeFiles(t, dir, map[string]string{"portico.toml": cfg + "\nbogus = 1\n"})
	p.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "reload failed") })
	p.Stop()
	checkJSONLines := func(name, text string, want ...string) {
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
				t.Errorf("%s: not a JSON log record: %q", name, line)
			}
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", name, w, text)
			}
		}
	}
	checkJSONLines("stdout", p.Stdout.String(), `"msg":"portico: serving `+p.URLs[0]+` (site json-site)"`, `"msg":"portico: admin on http://127.0.0.1:`)
	checkJSONLines("stderr", p.Stderr.String(), `"level":"ERROR","msg":"reload failed`, "bogus", `"msg":"shutting down"`)
}

// TestQuickModeSaysWhereToGo: quick mode prints the URL to open; bound to
// loopback it gives no all-interfaces warning.
func TestQuickModeSaysWhereToGo(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "home"})
	p := startPortico(t, dir, 1, "serve", "--bind=127.0.0.1", "0", "--directory", ".")
	want := "portico: open " + p.URLs[0] + " in a browser"
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(p.Stdout.String(), want) })
	if _, body := get(t, p.URL("/")); body != "home" {
		t.Errorf("GET /: %q", body)
	}
	p.Stop()
	if strings.Contains(p.Stderr.String(), "all interfaces") {
		t.Errorf("loopback bind warned about all interfaces:\n%s", p.Stderr)
	}
	if !strings.Contains(p.Stdout.String(), "level=INFO") {
		t.Errorf("quick mode's startup lines are not slog text:\n%s", p.Stdout)
	}
}

// TestCheckReportsEveryProblemInOneRun: an unknown key, a type error (where
// the decoder stops) and a bad value come out of one `portico check`.
func TestCheckReportsEveryProblemInOneRun(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"public/index.html": "hi", "portico.toml": `[server]
acces_log = "stdout"
log_format = "xml"

[[site]]
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public", spa = "yes" }
`})
	code, out, errOut := runPortico(t, dir, "check", "-c", "portico.toml")
	want := []string{
		`portico.toml:2: unknown key "server.acces_log" (did you mean "access_log"?)`,
		`portico.toml:3: log_format must be "combined" or "json", not "xml"`,
		`portico.toml:9: site.route.static.spa: want true or false, not a string`,
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || out != "" || len(lines) != len(want) {
		t.Fatalf("check: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %d lines", code, out, errOut, len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d: %q, want it to end with %q", i+1, lines[i], w)
		}
	}
}
