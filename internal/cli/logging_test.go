package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"log"
	"net"
	"strings"
	"testing"

	"portico/internal/config"
)

func TestNewLoggerFormats(t *testing.T) {
	var text, js bytes.Buffer
	newLogger("text", &text).Error("reload failed; the old config keeps running", "err", "x.toml:3: bad")
	newLogger("json", &js).Error("reload failed; the old config keeps running", "err", "x.toml:3: bad")
	if !strings.HasPrefix(text.String(), "time=") || !strings.Contains(text.String(), `level=ERROR msg="reload failed; the old config keeps running" err="x.toml:3: bad"`) {
		t.Errorf("text: %q", text.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["level"] != "ERROR" || rec["err"] != "x.toml:3: bad" {
		t.Errorf("json: %q (%v)", js.String(), err)
	}
}

// TestStdLogGoesToErrorLog: a library's log.Printf (net/http's client
// on an upstream's unsolicited bytes) becomes a warning in error_log's
// format, and the standard logger is restored after.
func TestStdLogGoesToErrorLog(t *testing.T) {
	var js bytes.Buffer
	restore := redirectStdLog(newLogger("json", &js))
	log.Printf("Unsolicited response received on idle HTTP channel starting with %q", "HTTP/1.1 200 OK")
	restore()
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["level"] != "WARN" || rec["source"] != "go" ||
		!strings.HasPrefix(rec["msg"].(string), "Unsolicited response") {
		t.Fatalf("error log got %q (%v)", js.String(), err)
	}
	if _, still := log.Writer().(stdLogWriter); still || log.Flags() == 0 {
		t.Errorf("standard logger not restored")
	}
}

// TestOpenLogsOneFormat: the startup lines (stdout) and the error log
// share the configured format, and log_format = "json" alone selects it.
func TestOpenLogsOneFormat(t *testing.T) {
	for _, tc := range []struct {
		srv  config.Server
		json bool
	}{
		{config.Server{}, false},
		{config.Server{LogFormat: "json"}, true},
		{config.Server{LogFormat: "json", ErrorLogFormat: "text"}, false},
	} {
		cfg := &config.Config{Server: tc.srv}
		config.ApplyDefaults(cfg)
		var out, errOut bytes.Buffer
		lg, err := openLogs(cfg.Server, &out, &errOut)
		if err != nil {
			t.Fatal(err)
		}
		lg.announce.Info("portico: admin on http://127.0.0.1:2019/")
		lg.own.Warn("something")
		lg.close()
		for name, s := range map[string]string{"stdout": out.String(), "stderr": errOut.String()} {
			isJSON := json.Valid([]byte(strings.TrimSpace(s)))
			if s == "" || isJSON != tc.json {
				t.Errorf("%+v: %s %q, want json=%v", tc.srv, name, s, tc.json)
			}
		}
	}
}

func TestBrowserOpener(t *testing.T) {
	none := func(string) (string, error) { return "", errors.New("not found") }
	only := func(want string) func(string) (string, error) {
		return func(c string) (string, error) {
			if c == want {
				return "/usr/bin/" + c, nil
			}
			return "", errors.New("not found")
		}
	}
	desktop := func(k string) string {
		if k == "DISPLAY" {
			return ":0"
		}
		return ""
	}
	wayland := func(k string) string {
		if k == "WAYLAND_DISPLAY" {
			return "wayland-0"
		}
		return ""
	}
	headless := func(string) string { return "" }
	tests := []struct {
		name     string
		goos     string
		look     func(string) (string, error)
		env      func(string) string
		cmd, why string
	}{
		{"mac", "darwin", none, headless, "open", ""},
		{"windows", "windows", none, headless, "rundll32", ""},
		{"x11 xdg-open", "linux", only("xdg-open"), desktop, "xdg-open", ""},
		{"wayland sensible-browser", "linux", only("sensible-browser"), wayland, "sensible-browser", ""},
		{"no opener", "linux", none, desktop, "", "no browser opener found (install xdg-utils)"},
		{"ssh session", "linux", only("xdg-open"), headless, "", "no desktop session (DISPLAY and WAYLAND_DISPLAY are unset)"},
	}
	for _, tt := range tests {
		cmd, _, why := browserOpener(tt.goos, tt.look, tt.env)
		if cmd != tt.cmd || why != tt.why {
			t.Errorf("%s: got %q %q, want %q %q", tt.name, cmd, why, tt.cmd, tt.why)
		}
	}
}

func TestQuickURL(t *testing.T) {
	addrs := map[string]net.Addr{"k": &net.TCPAddr{IP: net.IPv4zero, Port: 8123}}
	tests := []struct {
		bind, want string
		all        bool
	}{
		{"", "http://localhost:8123/", true},
		{"0.0.0.0", "http://localhost:8123/", true},
		{"::", "http://localhost:8123/", true},
		{"[::]", "http://localhost:8123/", true},
		{"127.0.0.1", "http://127.0.0.1:8123/", false},
		{"::1", "http://[::1]:8123/", false},
		{"[::1]", "http://[::1]:8123/", false},
	}
	for _, tt := range tests {
		if got := browserURL(quickURL(tt.bind, false), addrs); got != tt.want {
			t.Errorf("-b %q: %q, want %q", tt.bind, got, tt.want)
		}
		if got := browserURL(quickURL(tt.bind, true), addrs); got != "https"+strings.TrimPrefix(tt.want, "http") {
			t.Errorf("-b %q --tls: %q", tt.bind, got)
		}
		if got := allInterfaces(tt.bind); got != tt.all {
			t.Errorf("-b %q: all interfaces %v, want %v", tt.bind, got, tt.all)
		}
	}
}

// TestAnnounceQuick: quick mode prints a localhost URL on stdout and warns
// on the error log when every interface listens; not with -b 127.0.0.1.
func TestAnnounceQuick(t *testing.T) {
	addrs := map[string]net.Addr{"k": &net.TCPAddr{IP: net.IPv4zero, Port: 8000}}
	for _, tc := range []struct {
		bind, url string
		warn      bool
	}{
		{"", "http://localhost:8000/", true},
		{"127.0.0.1", "http://127.0.0.1:8000/", false},
	} {
		var out, errOut bytes.Buffer
		lg := logs{own: newLogger("text", &errOut), announce: newLogger("text", &out), close: func() {}}
		announceQuick(lg, &quickInfo{host: tc.bind}, addrs)
		if !strings.Contains(out.String(), `msg="portico: open `+tc.url+` in a browser"`) {
			t.Errorf("-b %q: stdout %q, want the URL %s", tc.bind, out.String(), tc.url)
		}
		warned := strings.Contains(errOut.String(), "level=WARN msg=\"portico: listening on all interfaces: reachable from other machines")
		if warned != tc.warn {
			t.Errorf("-b %q: stderr %q, want warning %v", tc.bind, errOut.String(), tc.warn)
		}
	}
}
