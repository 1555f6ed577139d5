package config

import "testing"

// TestErrorLogFormatDefault: the own log follows log_format unless
// error_log_format says otherwise, so one key makes every line JSON.
func TestErrorLogFormatDefault(t *testing.T) {
	cases := []struct{ logFormat, errorLogFormat, want string }{
		{"", "", "text"},
		{"combined", "", "text"},
		{"json", "", "json"},
		{"json", "text", "text"},
		{"combined", "json", "json"},
	}
	for _, c := range cases {
		cfg := &Config{Server: Server{LogFormat: c.logFormat, ErrorLogFormat: c.errorLogFormat}}
		ApplyDefaults(cfg)
		if got := cfg.Server.ErrorLogFormat; got != c.want {
			t.Errorf("log_format %q, error_log_format %q: got %q, want %q", c.logFormat, c.errorLogFormat, got, c.want)
		}
	}
}
