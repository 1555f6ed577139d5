package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestCountBoundsAcceptTheBound loads each count at its bound (accepted)
// and one past it (refused with the key's line); the golden files in
// testdata/errors hold the wording.
func TestCountBoundsAcceptTheBound(t *testing.T) {
	upstreams := func(n int) string {
		var us []string
		for i := range n {
			us = append(us, fmt.Sprintf("%q", fmt.Sprintf("http://127.0.0.1:%d", 9000+i)))
		}
		return strings.Join(us, ", ")
	}
	cases := []struct {
		name  string
		route func(n int) string
		bound int
	}{
		{"wsgi.workers", func(n int) string {
			return fmt.Sprintf("wsgi = { app = \"m:app\", workers = %d }", n)
		}, MaxWSGIWorkers},
		{"cgi.max_processes", func(n int) string {
			return fmt.Sprintf("cgi = { root = \"cgi-bin\", max_processes = %d }", n)
		}, MaxCGIProcesses},
		{"proxy.max_fails", func(n int) string {
			return fmt.Sprintf("proxy = { upstreams = [\"http://127.0.0.1:1\"], max_fails = %d }", n)
		}, MaxProxyMaxFails},
		{"proxy.retries", func(n int) string {
			return fmt.Sprintf("proxy = { upstreams = [\"http://127.0.0.1:1\"], retries = %d }", n)
		}, MaxProxyRetries},
		{"proxy.upstreams", func(n int) string {
			return fmt.Sprintf("proxy = { upstreams = [%s] }", upstreams(n))
		}, MaxProxyUpstreams},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := func(n int) string {
				return "[[site]]\n[[site.route]]\npath = \"/x/\"\n" + c.route(n) + "\n"
			}
			if _, _, err := loadText(t, text(c.bound)); err != nil {
				t.Errorf("%s = %d (the bound) refused: %v", c.name, c.bound, err)
			}
			_, _, err := loadText(t, text(c.bound+1))
			if err == nil || !strings.Contains(err.Error(), "portico.toml:4: ") {
				t.Errorf("%s = %d (past the bound): got %v, want an error on line 4", c.name, c.bound+1, err)
			}
		})
	}
}
