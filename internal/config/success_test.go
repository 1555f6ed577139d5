package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimalSite = `
[[site]]
[[site.route]]
path = "/"
static = { root = "public" }
`

func TestLoadMinimal(t *testing.T) {
	cfg, dir := mustLoad(t, minimalSite)
	if want := filepath.Join(dir, "portico.toml"); cfg.File != want {
		t.Errorf("File = %q, want %q", cfg.File, want)
	}
	if len(cfg.Sites) != 1 || len(cfg.Sites[0].Routes) != 1 {
		t.Fatalf("got %d sites, want 1 with 1 route", len(cfg.Sites))
	}
	r := cfg.Sites[0].Routes[0]
	if r.Static == nil || r.Static.Root != filepath.Join(dir, "public") {
		t.Errorf("static root = %+v, want %q", r.Static, filepath.Join(dir, "public"))
	}
}

// TestDefaults checks every default that ApplyDefaults fills in.
func TestDefaults(t *testing.T) {
	cfg, dir := mustLoad(t, `
[[site]]
[[site.route]]
path = "/"
static = { root = "public" }

[[site.route]]
path = "/cgi-bin/"
cgi = { root = "cgi-bin" }

[[site.route]]
path = "/api/"
proxy = { upstreams = ["http://127.0.0.1:8081", "http://127.0.0.1:8082", "http://127.0.0.1:8083"], health = { path = "/healthz" } }
cache = {}

[[site.route]]
path = "/app/"
wsgi = { app = "myapp:application" }
cache = {}

[[site.route]]
path = "/old/"
redirect = { to = "/new/" }
`)
	s := cfg.Server
	durs := []struct {
		name string
		got  Duration
		want time.Duration
	}{
		{"shutdown_timeout", s.ShutdownTimeout, 30 * time.Second},
		{"read_header_timeout", s.ReadHeaderTimeout, 10 * time.Second},
		{"read_timeout", s.ReadTimeout, 60 * time.Second},
		{"write_timeout", s.WriteTimeout, 60 * time.Second},
		{"idle_timeout", s.IdleTimeout, 120 * time.Second},
	}
	for _, d := range durs {
		if d.got.D() != d.want {
			t.Errorf("server.%s = %v, want %v", d.name, d.got.D(), d.want)
		}
	}
	strs := []struct{ name, got, want string }{
		{"access_log", s.AccessLog, "stdout"},
		{"log_format", s.LogFormat, "combined"},
		{"error_log", s.ErrorLog, "stderr"},
		{"admin", s.Admin, ""},
	}
	for _, c := range strs {
		if c.got != c.want {
			t.Errorf("server.%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if s.MaxHeaderBytes != 1<<20 {
		t.Errorf("server.max_header_bytes = %d, want 1MB", s.MaxHeaderBytes)
	}
	if s.MaxBodySize != 100<<20 {
		t.Errorf("server.max_body_size = %d, want 100MB", s.MaxBodySize)
	}
	if len(s.TrustedProxies) != 0 {
		t.Errorf("server.trusted_proxies = %q, want none", s.TrustedProxies)
	}

	site := cfg.Sites[0]
	if site.Name != "default" {
		t.Errorf("site name = %q, want %q", site.Name, "default")
	}
	if !slices.Equal(site.Listen, []string{":8080"}) {
		t.Errorf("listen = %q, want [\":8080\"]", site.Listen)
	}
	if site.TLS != nil {
		t.Errorf("tls = %+v, want nil", site.TLS)
	}
	for _, r := range site.Routes {
		if r.MaxBodySize != s.MaxBodySize {
			t.Errorf("route %s max_body_size = %d, want the server's %d", r.Path, r.MaxBodySize, s.MaxBodySize)
		}
		if r.StripPrefix {
			t.Errorf("route %s strip_prefix = true, want false", r.Path)
		}
	}

	st := site.Routes[0].Static
	if !slices.Equal(st.Index, []string{"index.html"}) {
		t.Errorf("static.index = %q, want [index.html]", st.Index)
	}
	if st.Browse || st.SPA || st.Dotfiles {
		t.Errorf("static browse/spa/dotfiles = %v/%v/%v, want all false", st.Browse, st.SPA, st.Dotfiles)
	}
	if st.Precompressed == nil || !*st.Precompressed {
		t.Errorf("static.precompressed = %v, want true", st.Precompressed)
	}
	if st.CacheControl != "" {
		t.Errorf("static.cache_control = %q, want empty", st.CacheControl)
	}

	c := site.Routes[1].CGI
	if c.Timeout.D() != 30*time.Second {
		t.Errorf("cgi.timeout = %v, want 30s", c.Timeout.D())
	}
	if c.User != "nobody" {
		t.Errorf("cgi.user = %q, want nobody", c.User)
	}
	if c.MaxProcesses != 64 {
		t.Errorf("cgi.max_processes = %d, want 64", c.MaxProcesses)
	}
	if c.SpoolChunked == nil || !*c.SpoolChunked {
		t.Errorf("cgi.spool_chunked = %v, want true", c.SpoolChunked)
	}

	p := site.Routes[2].Proxy
	if p.Balance != "round_robin" {
		t.Errorf("proxy.balance = %q, want round_robin", p.Balance)
	}
	if p.MaxFails != 1 {
		t.Errorf("proxy.max_fails = %d, want 1", p.MaxFails)
	}
	if p.Retries != 2 {
		t.Errorf("proxy.retries = %d, want 2 (upstreams less one)", p.Retries)
	}
	if p.Host != "client" {
		t.Errorf("proxy.host = %q, want client", p.Host)
	}
	pdurs := []struct {
		name string
		got  Duration
		want time.Duration
	}{
		{"fail_timeout", p.FailTimeout, 10 * time.Second},
		{"retry_timeout", p.RetryTimeout, 10 * time.Second},
		{"connect_timeout", p.ConnectTimeout, 5 * time.Second},
		{"read_timeout", p.ReadTimeout, 60 * time.Second},
		{"health.interval", p.Health.Interval, 5 * time.Second},
		{"health.timeout", p.Health.Timeout, 2 * time.Second},
	}
	for _, d := range pdurs {
		if d.got.D() != d.want {
			t.Errorf("proxy.%s = %v, want %v", d.name, d.got.D(), d.want)
		}
	}
	if p.Health.Expect != 0 {
		t.Errorf("proxy.health.expect = %d, want 0 (any 2xx)", p.Health.Expect)
	}

	w := site.Routes[3].WSGI
	if w.Workers != 2 || w.Python != "python3" || w.Timeout.D() != 30*time.Second || w.Dir != dir {
		t.Errorf("wsgi = %+v, want workers 2, python3, 30s, dir %q", w, dir)
	}

	if rd := site.Routes[4].Redirect; rd.Status != 302 {
		t.Errorf("redirect.status = %d, want 302", rd.Status)
	}

	for _, i := range []int{2, 3} {
		ca := site.Routes[i].Cache
		if ca.MaxSize != 256<<20 || ca.MaxObjectSize != 8<<20 || ca.Store != "memory" || ca.IgnoreClientNoCache {
			t.Errorf("cache = %+v, want 256MB, 8MB, memory", ca)
		}
		if want := []string{"method", "scheme", "host", "path", "query"}; !slices.Equal(ca.Key, want) {
			t.Errorf("cache.key = %q, want %q", ca.Key, want)
		}
	}
}

// TestExplicitValuesKept checks that set values are not overwritten by
// defaults.
func TestExplicitValuesKept(t *testing.T) {
	cfg, _ := mustLoad(t, `
[server]
shutdown_timeout = "5s"
access_log = "off"
log_format = "json"
max_body_size = "1GB"
max_header_bytes = "64KB"

[[site]]
name = "mine"
listen = ["127.0.0.1:9000"]
[[site.route]]
path = "/"
max_body_size = 1024
static = { root = "public", index = ["home.htm"], precompressed = false }
[[site.route]]
path = "/api/"
proxy = { upstreams = ["http://127.0.0.1:8081", "http://127.0.0.1:8082"], retries = -1, balance = "ip_hash" }
`)
	s := cfg.Server
	if s.ShutdownTimeout.D() != 5*time.Second || s.AccessLog != "off" || s.LogFormat != "json" ||
		s.MaxBodySize != 1<<30 || s.MaxHeaderBytes != 64<<10 {
		t.Errorf("server = %+v", s)
	}
	site := cfg.Sites[0]
	if site.Name != "mine" || !slices.Equal(site.Listen, []string{"127.0.0.1:9000"}) {
		t.Errorf("site = %q %q", site.Name, site.Listen)
	}
	r := site.Routes[0]
	if r.MaxBodySize != 1024 || !slices.Equal(r.Static.Index, []string{"home.htm"}) || *r.Static.Precompressed {
		t.Errorf("route = max_body_size %d, index %q, precompressed %v", r.MaxBodySize, r.Static.Index, *r.Static.Precompressed)
	}
	if p := site.Routes[1].Proxy; p.Retries != -1 || p.Balance != "ip_hash" {
		t.Errorf("proxy retries %d balance %q, want -1 ip_hash", p.Retries, p.Balance)
	}
	if site.Routes[1].MaxBodySize != 1<<30 {
		t.Errorf("route max_body_size = %d, want the server's 1GB", site.Routes[1].MaxBodySize)
	}
}

func TestHostsAndNames(t *testing.T) {
	cfg, _ := mustLoad(t, `
[[site]]
hosts = ["Example.TEST.", "*.Example.test"]
[[site.route]]
path = "/"
static = { root = "public" }

[[site]]
listen = [":8081"]
[[site.route]]
path = "/"
static = { root = "public" }

[[site]]
name = "named"
hosts = ["other.test"]
[[site.route]]
path = "/"
static = { root = "public" }
`)
	if got, want := cfg.Sites[0].Hosts, []string{"example.test", "*.example.test"}; !slices.Equal(got, want) {
		t.Errorf("hosts = %q, want %q", got, want)
	}
	for i, want := range []string{"example.test", "site2", "named"} {
		if got := cfg.Sites[i].Name; got != want {
			t.Errorf("site %d name = %q, want %q", i, got, want)
		}
	}
}

// TestSameHostDifferentListeners: a host may be claimed once per listener.
func TestSameHostDifferentListeners(t *testing.T) {
	mustLoad(t, `
[[site]]
name = "http"
listen = [":8080"]
hosts = ["example.test"]
[[site.route]]
path = "/"
redirect = { to = "https://example.test/", status = 308 }

[[site]]
name = "other"
listen = ["127.0.0.1:8080"]
hosts = ["example.test"]
[[site.route]]
path = "/"
static = { root = "public" }

[[site]]
name = "default"
listen = [":8080"]
[[site.route]]
path = "/"
static = { root = "public" }
`)
}

func TestRelativePaths(t *testing.T) {
	cfg, dir := mustLoad(t, `
[server]
access_log = "logs/access.log"
error_log = "/var/log/portico.err"

[[site]]
listen = [":8443"]
tls = { cert = "file.txt", key = "./file.txt" }
[[site.route]]
path = "/"
static = { root = "public/../public" }
[[site.route]]
path = "/cgi-bin/"
cgi = { root = "cgi-bin" }
[[site.route]]
path = "/app/"
wsgi = { app = "a:b", dir = "public" }
[[site.route]]
path = "/api/"
proxy = { upstreams = ["unix:run/app.sock", "unix:/run/abs.sock weight=2", "http://127.0.0.1:8081"] }
-- logs/.keep --
`)
	s := cfg.Sites[0]
	checks := []struct{ name, got, want string }{
		{"access_log", cfg.Server.AccessLog, filepath.Join(dir, "logs/access.log")},
		{"error_log", cfg.Server.ErrorLog, "/var/log/portico.err"},
		{"tls.cert", s.TLS.Cert, filepath.Join(dir, "file.txt")},
		{"tls.key", s.TLS.Key, filepath.Join(dir, "file.txt")},
		{"static.root", s.Routes[0].Static.Root, filepath.Join(dir, "public")},
		{"cgi.root", s.Routes[1].CGI.Root, filepath.Join(dir, "cgi-bin")},
		{"wsgi.dir", s.Routes[2].WSGI.Dir, filepath.Join(dir, "public")},
		{"upstream 0", s.Routes[3].Proxy.Upstreams[0], "unix:" + filepath.Join(dir, "run/app.sock")},
		{"upstream 1", s.Routes[3].Proxy.Upstreams[1], "unix:/run/abs.sock weight=2"},
		{"upstream 2", s.Routes[3].Proxy.Upstreams[2], "http://127.0.0.1:8081"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestRelativeConfigPath: Load makes a relative config path absolute, so
// everything resolves the same whatever the working folder.
func TestRelativeConfigPath(t *testing.T) {
	dir := writeFixture(t, minimalSite)
	t.Chdir(dir)
	cfg, err := Load("portico.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != filepath.Join(dir, "portico.toml") {
		t.Errorf("File = %q", cfg.File)
	}
	if got := cfg.Sites[0].Routes[0].Static.Root; got != filepath.Join(dir, "public") {
		t.Errorf("static root = %q", got)
	}
}

func TestLogKeywordsNotResolved(t *testing.T) {
	for _, kw := range []string{"off", "stdout", "stderr"} {
		cfg, _ := mustLoad(t, "[server]\naccess_log = \""+kw+"\"\nerror_log = \""+kw+"\"\n"+minimalSite)
		if cfg.Server.AccessLog != kw || cfg.Server.ErrorLog != kw {
			t.Errorf("access_log, error_log = %q, %q, want %q", cfg.Server.AccessLog, cfg.Server.ErrorLog, kw)
		}
	}
}

func TestIncludes(t *testing.T) {
	cfg, dir := mustLoad(t, `
[server]
include = ["sites-enabled/*.toml", "extra/one.toml", "empty/*.toml"]

[[site]]
name = "main"
[[site.route]]
path = "/"
static = { root = "public" }
-- sites-enabled/b.toml --
[[site]]
hosts = ["b.test"]
[[site.route]]
path = "/"
static = { root = "www" }
-- sites-enabled/b/www/x --
-- sites-enabled/www/index.html --
-- sites-enabled/a.toml --
[[site]]
hosts = ["a.test"]
[[site.route]]
path = "/"
static = { root = "www" }
[[site.route]]
path = "/cgi-bin/"
cgi = { root = "../cgi-bin" }

[[site]]
hosts = ["a2.test"]
[[site.route]]
path = "/"
redirect = { to = "https://a.test/" }
-- sites-enabled/notes.txt --
this is not a toml file and is not included
-- extra/one.toml --
[[site]]
hosts = ["one.test"]
[[site.route]]
path = "/app/"
wsgi = { app = "app:application" }
`)
	var names []string
	for _, s := range cfg.Sites {
		names = append(names, s.Name)
	}
	// Main file first, then each include pattern in order, each glob's
	// matches sorted.
	if want := []string{"main", "a.test", "a2.test", "b.test", "one.test"}; !slices.Equal(names, want) {
		t.Fatalf("sites = %q, want %q", names, want)
	}
	www := filepath.Join(dir, "sites-enabled", "www")
	if got := cfg.Sites[1].Routes[0].Static.Root; got != www {
		t.Errorf("a.test static root = %q, want %q (relative to the included file)", got, www)
	}
	if got := cfg.Sites[1].Routes[1].CGI.Root; got != filepath.Join(dir, "cgi-bin") {
		t.Errorf("a.test cgi root = %q", got)
	}
	if got := cfg.Sites[4].Routes[0].WSGI.Dir; got != filepath.Join(dir, "extra") {
		t.Errorf("one.test wsgi dir = %q, want the included file's folder", got)
	}
	// Sources name the file each site and route came from.
	wantSrc := []Position{
		{filepath.Join(dir, "portico.toml"), 5},
		{filepath.Join(dir, "sites-enabled", "a.toml"), 1},
		{filepath.Join(dir, "sites-enabled", "a.toml"), 10},
		{filepath.Join(dir, "sites-enabled", "b.toml"), 1},
		{filepath.Join(dir, "extra", "one.toml"), 1},
	}
	for i, want := range wantSrc {
		if got := cfg.Sites[i].Source; got != want {
			t.Errorf("site %d source = %v, want %v", i, got, want)
		}
	}
	if got, want := cfg.Sites[1].Routes[1].Source, (Position{filepath.Join(dir, "sites-enabled", "a.toml"), 6}); got != want {
		t.Errorf("route source = %v, want %v", got, want)
	}
}

// TestIncludeOfItself: a glob that matches the main file does not load it
// twice.
func TestIncludeOfItself(t *testing.T) {
	cfg, _ := mustLoad(t, `
[server]
include = ["*.toml"]
`+minimalSite+`
-- other.toml --
[[site]]
hosts = ["other.test"]
[[site.route]]
path = "/"
static = { root = "public" }
`)
	if len(cfg.Sites) != 2 {
		t.Errorf("got %d sites, want 2", len(cfg.Sites))
	}
}

func TestCGIRootHidden(t *testing.T) {
	cfg, dir := mustLoad(t, `
[[site]]
hosts = ["a.test"]
[[site.route]]
path = "/"
static = { root = "." }
[[site.route]]
path = "/cgi-bin/"
cgi = { root = "cgi-bin" }
[[site.route]]
path = "/pub/"
static = { root = "public" }

[[site]]
hosts = ["b.test"]
[[site.route]]
path = "/"
static = { root = "public" }
[[site.route]]
path = "/scripts/"
cgi = { root = "public/scripts" }
-- public/scripts/run.sh --
#!/bin/sh
`)
	a, b := cfg.Sites[0], cfg.Sites[1]
	cgi, scripts := filepath.Join(dir, "cgi-bin"), filepath.Join(dir, "public", "scripts")
	if got, want := a.Routes[0].Static.Hide, []string{cgi, scripts}; !slices.Equal(got, want) {
		t.Errorf("root static hide = %q, want %q (other sites' cgi roots too)", got, want)
	}
	if got, want := a.Routes[2].Static.Hide, []string{scripts}; !slices.Equal(got, want) {
		t.Errorf("/pub/ static hide = %q, want %q", got, want)
	}
	if got, want := b.Routes[0].Static.Hide, []string{scripts}; !slices.Equal(got, want) {
		t.Errorf("b.test static hide = %q, want %q", got, want)
	}
}

func TestCGIRootSameAsStaticRoot(t *testing.T) {
	cfg, dir := mustLoad(t, `
[[site]]
[[site.route]]
path = "/"
static = { root = "public" }
[[site.route]]
path = "/cgi/"
cgi = { root = "public" }
`)
	if got, want := cfg.Sites[0].Routes[0].Static.Hide, []string{filepath.Join(dir, "public")}; !slices.Equal(got, want) {
		t.Errorf("hide = %q, want %q", got, want)
	}
}

func TestCGIRootOutsideNotHidden(t *testing.T) {
	cfg, _ := mustLoad(t, `
[[site]]
[[site.route]]
path = "/"
static = { root = "public" }
[[site.route]]
path = "/cgi-bin/"
cgi = { root = "cgi-bin" }
-- public-old/x --
`)
	if got := cfg.Sites[0].Routes[0].Static.Hide; len(got) != 0 {
		t.Errorf("hide = %q, want none", got)
	}
}

// TestInlineRouteArray: routes may be written as an inline array, and
// problems in them still get a line.
func TestInlineRouteArray(t *testing.T) {
	cfg, _ := mustLoad(t, `
[[site]]
route = [
  { path = "/", static = { root = "public" } },
  { path = "/old/", redirect = { to = "/new/", status = 301 } },
]
`)
	if n := len(cfg.Sites[0].Routes); n != 2 {
		t.Fatalf("got %d routes", n)
	}
	if cfg.Sites[0].Routes[1].Source.Line != 5 {
		t.Errorf("route 1 source = %v, want line 5", cfg.Sites[0].Routes[1].Source)
	}
}

func TestSizes(t *testing.T) {
	good := []struct {
		in   string
		want Size
	}{
		{"0", 0},
		{"1024", 1024},
		{"512KB", 512 << 10},
		{"64MB", 64 << 20},
		{"1GB", 1 << 30},
		{"2TB", 2 << 40},
		{"64mb", 64 << 20},
		{"64Mb", 64 << 20},
		{"64M", 64 << 20},
		{"8k", 8 << 10},
		{"1g", 1 << 30},
		{"100B", 100},
		{"100b", 100},
		{" 64 MB ", 64 << 20},
	}
	for _, c := range good {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", c.in, got, err, c.want)
		}
	}
	bad := []string{
		"", "MB", "KB", "-1", "-1MB", "1.5GB", "0x10", "1e6", "64XB", "64 M B", "MB64",
		"64MiB", "ten", "9223372036854775807", "4611686018427387905", "9999999999999TB",
		"+", "1_000",
	}
	for _, in := range bad {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		} else if !strings.Contains(err.Error(), "size") {
			t.Errorf("ParseSize(%q) error %q does not say what was expected", in, err)
		}
	}
	// The limit: up to 2^62 bytes.
	if _, err := ParseSize("4194304TB"); err != nil {
		t.Errorf("ParseSize(4194304TB) = %v, want 2^62", err)
	}
	if _, err := ParseSize("4194305TB"); err == nil {
		t.Errorf("ParseSize(4194305TB) accepted, want too large")
	}
}

func TestSizeText(t *testing.T) {
	var s Size
	if err := s.UnmarshalText([]byte("64MB")); err != nil || s != 64<<20 {
		t.Fatalf("UnmarshalText = %d, %v", s, err)
	}
	b, _ := s.MarshalText()
	var s2 Size
	if err := s2.UnmarshalText(b); err != nil || s2 != s {
		t.Errorf("round trip %q -> %d, %v", b, s2, err)
	}
}

func TestDurations(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"1m30s", 90 * time.Second},
		{"5m", 5 * time.Minute},
		{"1h", time.Hour},
		{"250ms", 250 * time.Millisecond},
		{"1.5s", 1500 * time.Millisecond},
		{"0s", 0},
		{"0", 0},
	}
	for _, c := range good {
		var d Duration
		if err := d.UnmarshalText([]byte(c.in)); err != nil || d.D() != c.want {
			t.Errorf("Duration(%q) = %v, %v, want %v", c.in, d.D(), err, c.want)
		}
		b, _ := d.MarshalText()
		var d2 Duration
		if err := d2.UnmarshalText(b); err != nil || d2 != d {
			t.Errorf("round trip of %q via %q = %v, %v", c.in, b, d2.D(), err)
		}
	}
	for _, in := range []string{"", "30", "-5s", "-1ms", "30 seconds", "1d", "s", "forever", "5 m"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("Duration(%q) = %v, want an error", in, d.D())
		}
	}
}

// TestDurationsInFile: each kind of value in a duration key, through Load.
func TestDurationsInFile(t *testing.T) {
	cases := []struct {
		value string
		ok    bool
	}{
		{`"45s"`, true},
		{`"0s"`, true}, // zero means the default
		{`45`, false},
		{`0`, false},
		{`-5`, false},
		{`"-5s"`, false},
		{`4.5`, false},
		{`true`, false},
		{`["5s"]`, false},
		{`{ s = 5 }`, false},
		{`1979-05-27`, false},
	}
	for _, c := range cases {
		_, _, err := loadText(t, "[server]\nidle_timeout = "+c.value+"\n"+minimalSite)
		if (err == nil) != c.ok {
			t.Errorf("idle_timeout = %s: error %v, want ok=%v", c.value, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "portico.toml:2:") {
			t.Errorf("idle_timeout = %s: error %q does not name line 2", c.value, err)
		}
	}
}

func TestSizesInFile(t *testing.T) {
	cases := []struct {
		value string
		want  Size
		ok    bool
	}{
		{`"512KB"`, 512 << 10, true},
		{`"64mb"`, 64 << 20, true},
		{`1048576`, 1 << 20, true},
		{`"1024"`, 1024, true},
		{`-1`, 0, false},
		{`"64XB"`, 0, false},
		{`1.5`, 0, false},
		{`true`, 0, false},
	}
	for _, c := range cases {
		cfg, _, err := loadText(t, "[server]\nmax_body_size = "+c.value+"\n"+minimalSite)
		if (err == nil) != c.ok {
			t.Errorf("max_body_size = %s: error %v, want ok=%v", c.value, err, c.ok)
			continue
		}
		if err == nil && cfg.Server.MaxBodySize != c.want {
			t.Errorf("max_body_size = %s: got %d, want %d", c.value, cfg.Server.MaxBodySize, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), "portico.toml:2:") {
			t.Errorf("max_body_size = %s: error %q does not name line 2", c.value, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "nope.toml"))
	probs, ok := err.(Problems)
	if !ok || len(probs) != 1 || probs[0].Pos.File != filepath.Join(dir, "nope.toml") ||
		!strings.Contains(probs[0].Msg, "no such file") {
		t.Errorf("Load(missing) = %#v", err)
	}
}

func TestProblemsError(t *testing.T) {
	ps := Problems{
		{Position{"a.toml", 3}, "one"},
		{Position{"b.toml", 0}, "two"},
		{Position{}, "three"},
	}
	want := "a.toml:3: one\nb.toml: two\n(flags): three"
	if got := ps.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestValidateInMemory: quick mode builds a config without a file;
// Validate checks it the same way, and FilesFirst allows static + proxy.
func TestValidateInMemory(t *testing.T) {
	dir := t.TempDir()
	cfg := &Config{Sites: []Site{{
		Listen: []string{":8000"},
		Routes: []Route{{
			Path:       "/",
			FilesFirst: true,
			Static:     &Static{Root: dir, Browse: true},
			Proxy:      &Proxy{Upstreams: []string{"http://127.0.0.1:9000"}},
		}},
	}}}
	ApplyDefaults(cfg)
	if err := Validate(cfg); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	cfg.Sites[0].Routes[0].FilesFirst = false
	err := Validate(cfg)
	if err == nil || !strings.Contains(err.Error(), "2 handlers") {
		t.Fatalf("Validate without FilesFirst = %v, want a two-handler error", err)
	}
	if !strings.HasPrefix(err.Error(), "(flags): ") {
		t.Errorf("in-memory problem = %q, want it to start with (flags)", err)
	}
	cfg.Sites[0].Routes[0].FilesFirst = true
	cfg.Sites[0].Routes[0].Static.Root = filepath.Join(dir, "missing")
	if err := Validate(cfg); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Validate with a missing root = %v", err)
	}
}

func TestApplyDefaultsIdempotent(t *testing.T) {
	cfg, _ := mustLoad(t, `
[[site]]
[[site.route]]
path = "/"
static = { root = "public" }
[[site.route]]
path = "/cgi-bin/"
cgi = { root = "public/cgi-bin" }
-- public/cgi-bin/x --
`)
	before := cloneSites(cfg.Sites)
	ApplyDefaults(cfg)
	if !reflect.DeepEqual(before, cfg.Sites) {
		t.Errorf("a second ApplyDefaults changed the config:\n%+v\n%+v", before, cfg.Sites)
	}
}

func cloneSites(s []Site) []Site {
	out := make([]Site, len(s))
	for i := range s {
		out[i] = s[i]
		out[i].Routes = slices.Clone(s[i].Routes)
		for j := range out[i].Routes {
			if st := out[i].Routes[j].Static; st != nil {
				c := *st
				c.Hide = slices.Clone(st.Hide)
				out[i].Routes[j].Static = &c
			}
		}
	}
	return out
}

func TestListenerKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{":8080", ":8080"},
		{"0.0.0.0:8080", ":8080"},
		{"[::]:8080", ":8080"},
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"LOCALHOST:80", "localhost:80"},
		{"[::1]:80", "[::1]:80"},
		{"bad", "bad"},
	}
	for _, c := range cases {
		if got := ListenerKey(c.in); got != c.want {
			t.Errorf("ListenerKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	cases := []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::1", "::1/128"},
		{"fd00::/8", "fd00::/8"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
	}
	for _, c := range cases {
		got, err := ParsePrefix(c.in)
		if err != nil || got.String() != c.want {
			t.Errorf("ParsePrefix(%q) = %v, %v, want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "localhost", "10.0.0.256", "10.0.0.0/33", "10.0.0.0/"} {
		if _, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", in)
		}
	}
}

// TestSpecExample loads the example of SPEC.md (with the files it names),
// so the documented config keeps loading.
func TestSpecExample(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "spec_example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := mustLoad(t, string(text))
	if len(cfg.Sites) == 0 {
		t.Fatal("no sites")
	}
}

// TestHideRelativeRoots: quick mode may build a config with relative
// roots; a cgi root inside the static root is hidden all the same, by its
// absolute path.
func TestHideRelativeRoots(t *testing.T) {
	dir := writeFixture(t, "")
	t.Chdir(dir)
	for _, c := range []struct{ static, cgi string }{
		{".", "cgi-bin"},
		{".", filepath.Join(dir, "cgi-bin")},
		{dir, "cgi-bin"},
		{"", "cgi-bin"},
	} {
		cfg := &Config{Sites: []Site{{Routes: []Route{
			{Path: "/", Static: &Static{Root: c.static}},
			{Path: "/cgi-bin/", CGI: &CGI{Root: c.cgi}},
		}}}}
		ApplyDefaults(cfg)
		got := cfg.Sites[0].Routes[0].Static.Hide
		want := []string{filepath.Join(dir, "cgi-bin")}
		if c.static == "" {
			want = nil
		}
		if !slices.Equal(got, want) {
			t.Errorf("static %q, cgi %q: hide = %q, want %q", c.static, c.cgi, got, want)
		}
	}
}

// TestUnreadableInclude: a file the process may not read is reported at
// the include line. (Root reads anything; the broken-symlink golden case
// covers that.)
func TestUnreadableInclude(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permissions do not stop reads")
	}
	dir := writeFixture(t, "[server]\ninclude = [\"sites/*.toml\"]\n"+minimalSite+"-- sites/a.toml --\n[[site]]\n")
	if err := os.Chmod(filepath.Join(dir, "sites", "a.toml"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := Load(filepath.Join(dir, "portico.toml"))
	if err == nil || !strings.Contains(err.Error(), "portico.toml:2: include") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Load = %v, want a permission error at portico.toml:2", err)
	}
}

// TestDefaultNamesUnique: an http and an https site for one host need no
// names; default names never clash, explicit duplicates are errors.
func TestDefaultNamesUnique(t *testing.T) {
	cfg, _ := mustLoad(t, `
[[site]]
listen = [":80"]
hosts = ["example.test"]
[[site.route]]
path = "/"
redirect = { to = "https://example.test{uri}", status = 308 }

[[site]]
listen = [":8443"]
hosts = ["example.test"]
tls = { cert = "file.txt", key = "file.txt" }
[[site.route]]
path = "/"
static = { root = "public" }

[[site]]
listen = [":8081"]
name = "site4"
[[site.route]]
path = "/"
static = { root = "public" }

[[site]]
listen = [":8082"]
[[site.route]]
path = "/"
static = { root = "public" }
`)
	var names []string
	for _, s := range cfg.Sites {
		names = append(names, s.Name)
	}
	if want := []string{"example.test", "example.test-2", "site4", "site4-2"}; !slices.Equal(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
}

// TestCacheObjectSizeDefaultFitsMaxSize: an unset max_object_size is
// never larger than max_size (cache.New refuses that), so a small cache
// with only max_size loads and builds.
func TestCacheObjectSizeDefaultFitsMaxSize(t *testing.T) {
	for _, tc := range []struct{ maxSize, maxObject, want Size }{
		{0, 0, DefaultCacheMaxObjectSize},
		{1 << 20, 0, 1 << 20},
		{1 << 30, 0, DefaultCacheMaxObjectSize},
		{1 << 20, 4096, 4096},
	} {
		c := Cache{MaxSize: tc.maxSize, MaxObjectSize: tc.maxObject}
		c.SetDefaults()
		if c.MaxObjectSize != tc.want || c.MaxObjectSize > c.MaxSize {
			t.Errorf("max_size %d, max_object_size %d: filled %+v, want max_object_size %d", tc.maxSize, tc.maxObject, c, tc.want)
		}
	}
}
