package server

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"portico/internal/config"
)

// The metrics report each live WSGI pool (found under its route's layers):
// workers by state (starting and retiring too), the queue, recycles by
// cause.
func TestWSGIMetrics(t *testing.T) {
	python, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		if testing.Short() {
			t.Skip("no /usr/bin/python3 (-short)")
		}
		t.Fatal("no /usr/bin/python3: .ci/run installs it")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "app"), 0o755)
	os.WriteFile(filepath.Join(dir, "app", "app.py"), []byte("def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hi']\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "portico.toml"), []byte(`
[server]
access_log = "off"
[[site]]
name = "main"
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/app/"
  wsgi = { app = "app:application", dir = "app", workers = 2, python = "`+python+`" }
  [[site.route.headers]]
  set = { "X-Layer" = "wsgi" }
`), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "portico.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	srv := New(Options{Stdout: io.Discard, Metrics: m})
	m.Watch(srv)
	if err := srv.Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`portico_wsgi_workers{route="/app/",site="main",state="idle"} 2`,
		`portico_wsgi_workers{route="/app/",site="main",state="busy"} 0`,
		`portico_wsgi_workers{route="/app/",site="main",state="starting"} 0`,
		`portico_wsgi_workers{route="/app/",site="main",state="retiring"} 0`,
		`portico_wsgi_workers{route="/app/",site="main",state="configured"} 2`,
		`portico_wsgi_queue{route="/app/",site="main"} 0`,
		`portico_wsgi_recycles_total{cause="max_memory",route="/app/",site="main"} 0`,
		`portico_wsgi_recycles_total{cause="died",route="/app/",site="main"} 0`,
		`portico_wsgi_timeouts_total{route="/app/",site="main"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}
