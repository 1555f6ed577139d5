package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExample loads the complete example of docs/config.md (the main
// file and its sites-enabled file), so the manual cannot drift from the
// loader.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Skipf("docs/config.md: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "## A complete example")
	if !ok {
		t.Fatal(`docs/config.md has no "## A complete example" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 2 {
		t.Fatalf("found %d toml blocks in the example section, want 2 (main file, included file)", len(blocks))
	}
	dir := writeFixture(t, blocks[0][1]+"-- sites-enabled/docs.toml --\n"+blocks[1][1])
	for _, d := range []string{"dist/assets", "apps/blog", "docs-html", "logs"} {
		mustMkdir(t, filepath.Join(dir, d))
	}
	cfg, err := Load(filepath.Join(dir, "portico.toml"))
	if err != nil {
		t.Fatalf("the documented example does not load:\n%v", err)
	}
	if len(cfg.Sites) != 3 {
		t.Errorf("got %d sites, want 3", len(cfg.Sites))
	}
	if got, want := cfg.Sites[2].Routes[0].Static.Root, filepath.Join(dir, "docs-html"); got != want {
		t.Errorf("included static root = %q, want %q", got, want)
	}
	if got, want := cfg.Sites[0].Routes[3].Proxy.Upstreams[2], "unix:"+filepath.Join(dir, "run/app3.sock"); got != want {
		t.Errorf("unix upstream = %q, want %q", got, want)
	}
}

// TestDocsMentionEveryKey: every key of the schema appears in
// docs/config.md as `key`.
func TestDocsMentionEveryKey(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Skipf("docs/config.md: %v", err)
	}
	for _, key := range schemaKeys() {
		if !strings.Contains(key, ".") {
			continue // [server], [[site]]: headings
		}
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(doc), "`"+leaf+"`") {
			t.Errorf("docs/config.md does not document %s", key)
		}
	}
}

// schemaKeys lists every key of the schema, dotted, without indices.
func schemaKeys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			keys = append(keys, key)
			if f.Type != durationType && f.Type != sizeType {
				walk(key, f.Type)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return keys
}
