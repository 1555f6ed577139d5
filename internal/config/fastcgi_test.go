package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFastCGIUpstream(t *testing.T) {
	for _, tc := range []struct {
		in, network, address, wantErr string
	}{
		{in: "unix:/run/php/php8.2-fpm.sock", network: "unix", address: "/run/php/php8.2-fpm.sock"},
		{in: "127.0.0.1:9000", network: "tcp", address: "127.0.0.1:9000"},
		{in: "[::1]:9000", network: "tcp", address: "[::1]:9000"},
		{in: "php:9000", network: "tcp", address: "php:9000"},
		{in: "127.0.0.1", wantErr: "port is required"},
		{in: "http://127.0.0.1:9000", wantErr: "without a scheme"},
		{in: "unix:run/fpm.sock", wantErr: "must be absolute"},
		{in: "unix:/a.sock weight=2", wantErr: "one address only"},
		{in: "127.0.0.1:0", wantErr: "bad port"},
		{in: "127.0.0.1:9000/x", wantErr: "port"},
		{in: "", wantErr: "empty"},
	} {
		network, address, err := ParseFastCGIUpstream(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseFastCGIUpstream(%q) = %q %q %v, want error with %q", tc.in, network, address, err, tc.wantErr)
			}
			continue
		}
		if err != nil || network != tc.network || address != tc.address {
			t.Errorf("ParseFastCGIUpstream(%q) = %q %q %v, want %q %q", tc.in, network, address, err, tc.network, tc.address)
		}
	}
}

// TestFastCGIDefaultsAndPaths: the form loads, its relative root
// and socket resolve against the file, and the defaults are filled.
func TestFastCGIDefaultsAndPaths(t *testing.T) {
	cfg, dir := mustLoad(t, `
[[site]]
[[site.route]]
path = "/php/"
fastcgi = { upstream = "unix:run/php-fpm.sock", root = "public" }
`)
	f := cfg.Sites[0].Routes[0].FastCGI
	want := FastCGI{
		Upstream:       "unix:" + filepath.Join(dir, "run/php-fpm.sock"),
		Root:           filepath.Join(dir, "public"),
		Index:          "index.php",
		SplitPath:      ".php",
		MaxConns:       5,
		ConnectTimeout: Duration(5 * time.Second),
		ReadTimeout:    Duration(60 * time.Second),
	}
	if f == nil || f.Upstream != want.Upstream || f.Root != want.Root || f.Index != want.Index ||
		f.SplitPath != want.SplitPath || f.MaxConns != want.MaxConns || f.ConnectTimeout != want.ConnectTimeout || f.ReadTimeout != want.ReadTimeout {
		t.Errorf("fastcgi = %+v, want %+v", f, want)
	}
}
