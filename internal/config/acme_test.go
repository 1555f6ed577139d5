package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestACMEConfig(t *testing.T) {
	site := func(extra string) string {
		return `
[[site]]
name = "a"
listen = ["127.0.0.1:8443"]
hosts = ["a.test"]
` + extra + `
  [[site.route]]
  path = "/"
  redirect = { to = "https://example.test/" }
`
	}
	tests := []struct {
		name, toml string
		wantErr    string
	}{
		{"auto", "[server.acme]\nemail = \"ops@a.test\"\n" + site(`tls = "auto"`), ""},
		{"auto without acme", site(`tls = "auto"`), `tls = "auto" needs a [server.acme] table`},
		{"not auto", "[server.acme]\n" + site(`tls = "manual"`), `tls must be "auto" or a table`},
		{"wildcard", "[server.acme]\n" + strings.Replace(site(`tls = "auto"`), `"a.test"`, `"*.a.test"`, 1), "needs the DNS-01 challenge"},
		{"ip host", "[server.acme]\n" + strings.Replace(site(`tls = "auto"`), `"a.test"`, `"127.0.0.1"`, 1), "domain names only"},
		{"http directory", "[server.acme]\ndirectory = \"http://ca.test/dir\"\n" + site(`tls = "auto"`), "want an https:// URL"},
		{"bad storage", "[server.acme]\nstorage = \"s3://bucket\"\n" + site(`tls = "auto"`), "want a folder or redis://"},
		{"redirect without tls", site(`redirect_http = true`), "redirect_http needs tls"},
		{"http_listen alone", site(`http_listen = [":80"]`), "used by redirect_http only"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		p := filepath.Join(dir, "portico.toml")
		os.WriteFile(p, []byte(tt.toml), 0o644)
		cfg, err := Load(p)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
		case tt.wantErr == "" && cfg != nil:
			a := cfg.Server.ACME
			if !cfg.Sites[0].TLS.Auto || a.Directory != DefaultACMEDirectory || a.Storage != filepath.Join(dir, "certs") {
				t.Errorf("%s: auto %v, acme %+v", tt.name, cfg.Sites[0].TLS.Auto, a)
			}
		}
	}
}

func TestRedirectHTTPAddsAPlainSite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "portico.toml")
	os.WriteFile(p, []byte(`
[server.acme]
[[site]]
name = "a"
listen = ["127.0.0.1:8443"]
hosts = ["a.test"]
tls = "auto"
redirect_http = true
  [[site.route]]
  path = "/"
  redirect = { to = "https://example.test/" }
`), 0o644)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sites) != 2 {
		t.Fatalf("got %d sites, want the site and its plain-HTTP redirect", len(cfg.Sites))
	}
	r := cfg.Sites[1]
	if r.Name != "a (http)" || r.Listen[0] != ":80" || r.TLS != nil || r.Routes[0].Redirect.To != "https://{hostname}:8443{uri}" || r.Routes[0].Redirect.Status != 308 {
		t.Errorf("redirect site: %+v %+v", r, r.Routes[0].Redirect)
	}
}
