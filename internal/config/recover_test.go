package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCheckReportsEveryProblem: one load of a file with an unknown key, a
// type error the decoder stops at, a duration without a unit and a bad
// value reports all four, each at its line, and no problem that only
// follows from another (the site whose listen was refused is not also
// "without listen").
func TestCheckReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portico.toml")
	text := `[server]
acces_log = "stdout"
log_format = "xml"
idle_timeout = 30

[[site]]
listen = 8080
  [[site.route]]
  path = "/"
  static = { root = "` + dir + `", spa = "yes" }
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("Load: %v, want Problems", err)
	}
	want := []string{
		`:2: unknown key "server.acces_log" (did you mean "access_log"?)`,
		`:3: log_format must be "combined" or "json", not "xml"`,
		`:4: server.idle_timeout: a duration needs a unit`,
		`:7: site.listen: want an array of strings`,
		`:10: site.route.static.spa: want true or false, not a string`,
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestRemovePath(t *testing.T) {
	doc := map[string]any{
		"server": map[string]any{"a": 1, "b": 2},
		"site": []any{
			map[string]any{"listen": 1, "route": []any{map[string]any{"path": "/", "static": map[string]any{"spa": "x", "root": "r"}}}},
		},
	}
	removePath(doc, "server.a")
	removePath(doc, "site[0].route[0].static.spa")
	removePath(doc, "site[0].listen")
	removePath(doc, "site[3].listen")        // no such element: nothing
	removePath(doc, "server.b.c")            // below a scalar: nothing
	removePath(doc, "site[0].route[0].x[1]") // an element goes with its array
	want := map[string]any{
		"server": map[string]any{"b": 2},
		"site": []any{
			map[string]any{"route": []any{map[string]any{"path": "/", "static": map[string]any{"root": "r"}}}},
		},
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("got %#v", doc)
	}
}

func TestKindMismatch(t *testing.T) {
	cases := []struct {
		path, file string
		want       string
	}{
		{"server.access_log", "access_log = 1", "a string"},
		{"site[0].tls", "tls = 1", "a table or a string"},
		{"site[0].tls", `tls = "auto"`, ""},
		{"server.max_body_size", "max_body_size = 10", ""},
		{"server.include", `include = "x"`, "an array of strings"},
	}
	for _, c := range cases {
		ty, known, _ := schemaType(c.path)
		if !known || ty == nil {
			t.Fatalf("%s: not in the schema", c.path)
		}
		ps := scanPositions("f", []byte(c.file))
		var kind = ps.kinds[strings.TrimPrefix(strings.TrimPrefix(c.path, "server."), "site[0].")]
		if got := kindMismatch(ty, kind); !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
			t.Errorf("%s = %s: %q, want %q", c.path, c.file, got, c.want)
		}
	}
	if _, known, at := schemaType("site[0].route[1].statik.root"); known || at != "site[0].route[1].statik" {
		t.Errorf("unknown key: known %v at %q", known, at)
	}
}
