package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// servingLine is the pattern black-box tests (e2e/harness_test.go) read.
var servingLine = regexp.MustCompile(`portico: serving (\S+) \(site ([^)]*)\)`)

// TestAnnounceLineInBothFormats: the startup line is a slog record in the
// chosen format and still carries the SPEC's exact text.
func TestAnnounceLineInBothFormats(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		var out bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&out, nil)
		if format == "json" {
			h = slog.NewJSONHandler(&out, nil)
		}
		cfg := &config.Config{Sites: []config.Site{{Name: "docs & more", Listen: []string{"127.0.0.1:0"},
			Routes: []config.Route{{Path: "/", Static: &config.Static{Root: dir}}}}}}
		cfg.Server.AccessLog = "off"
		config.ApplyDefaults(cfg)
		s := New(Options{Announce: slog.New(h)})
		if err := s.Start(cfg); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Shutdown(ctx)
		cancel()
		line := strings.TrimSpace(out.String())
		m := servingLine.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(m[1], "http://127.0.0.1:") || m[2] != "docs & more" {
			t.Fatalf("%s: %q does not match the serving-line pattern with the site name", format, line)
		}
		switch format {
		case "text":
			if !strings.HasPrefix(line, "time=") || !strings.Contains(line, "level=INFO") {
				t.Errorf("text: %q is not a slog text record", line)
			}
		case "json":
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("json: %q: %v", line, err)
			}
			if rec["msg"] != m[0] || rec["url"] != m[1] || rec["site"] != "docs & more" || rec["level"] != "INFO" {
				t.Errorf("json: %v", rec)
			}
		}
	}
}
