package config

import (
	"slices"
	"testing"
)

// A route inherits its site's compression, overrides any key, and turns
// it off with compress = [].
func TestCompressionResolved(t *testing.T) {
	cfg, _, err := loadText(t, `
[[site]]
compress = ["br", "gzip"]
compress_level = 3
compress_min_size = "2KB"
[[site.route]]
path = "/"
static = { root = "public" }
[[site.route]]
path = "/api/"
proxy = { upstreams = ["http://127.0.0.1:9"] }
compress = ["gzip"]
compress_types = ["application/json"]
[[site.route]]
path = "/raw/"
proxy = { upstreams = ["http://127.0.0.1:9"] }
compress = []
[[site]]
name = "plain"
listen = [":8081"]
[[site.route]]
path = "/"
static = { root = "public" }
`)
	if err != nil {
		t.Fatal(err)
	}
	rs := cfg.Sites[0].Routes
	if c := rs[0].Compression; c == nil || !slices.Equal(c.Encodings, []string{"br", "gzip"}) || c.Level != 3 || c.MinSize != 2048 || !slices.Equal(c.Types, DefaultCompressTypes()) {
		t.Errorf("inherited: %+v", c)
	}
	if c := rs[1].Compression; c == nil || !slices.Equal(c.Encodings, []string{"gzip"}) || c.Level != 3 || !slices.Equal(c.Types, []string{"application/json"}) {
		t.Errorf("overridden: %+v", c)
	}
	if c := rs[2].Compression; c != nil {
		t.Errorf("compress = []: %+v, want off", c)
	}
	if c := cfg.Sites[1].Routes[0].Compression; c != nil {
		t.Errorf("no compress key: %+v, want off (the server default)", c)
	}
	if c := (&Route{}); c.Compression != nil {
		t.Error("zero route compresses")
	}
}

func TestCompressionDefaults(t *testing.T) {
	cfg, _, err := loadText(t, `
[server]
request_id = "generate"
[[site]]
compress = ["zstd"]
[[site.route]]
path = "/"
static = { root = "public" }
`)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Sites[0].Routes[0].Compression
	if c.Level != DefaultCompressLevel || c.MinSize != DefaultCompressMinSize {
		t.Errorf("defaults: %+v", c)
	}
	if cfg.Server.RequestID != RequestIDGenerate {
		t.Errorf("request_id %q", cfg.Server.RequestID)
	}
}

func TestValidMediaPattern(t *testing.T) {
	for p, want := range map[string]bool{
		"text/*": true, "application/json": true, "application/*+xml": true,
		"*/*": false, "text": false, "text/": false, "/json": false, "text/*x": false,
		"application/*+": false, "text/plain; charset=utf-8": false, "a/b/c": false,
	} {
		if got := validMediaPattern(p); got != want {
			t.Errorf("validMediaPattern(%q) = %v, want %v", p, got, want)
		}
	}
}
