package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/errors")

// dirPlaceholder stands for the temporary folder in golden files, so they
// do not depend on where the test runs.
const dirPlaceholder = "$DIR"

// writeFixture lays out one test case in a new temporary folder and returns
// the folder. Every case gets the same furniture:
//
//	public/index.html   a static root
//	cgi-bin/            a cgi root
//	file.txt            a file where a folder is expected
//
// A case file holds the main config (written as portico.toml) and,
// after lines of the form "-- NAME --", further files. A section named
// "-- symlink NAME --" makes NAME a symlink to the section's first line.
func writeFixture(t testing.TB, text string) string {
	t.Helper()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "public", "index.html"), "<h1>hi</h1>\n")
	mustMkdir(t, filepath.Join(dir, "cgi-bin"))
	mustWrite(t, filepath.Join(dir, "file.txt"), "not a folder\n")
	name, kind := "portico.toml", "file"
	var body strings.Builder
	flush := func() {
		switch kind {
		case "file":
			mustWrite(t, filepath.Join(dir, name), body.String())
		case "symlink":
			p := filepath.Join(dir, name)
			mustMkdir(t, filepath.Dir(p))
			if err := os.Symlink(strings.TrimSpace(body.String()), p); err != nil {
				t.Fatal(err)
			}
		}
		body.Reset()
	}
	for _, line := range strings.SplitAfter(text, "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			flush()
			name, kind = strings.TrimSpace(l[3:len(l)-3]), "file"
			if n, ok := strings.CutPrefix(name, "symlink "); ok {
				name, kind = n, "symlink"
			}
			continue
		}
		body.WriteString(line)
	}
	flush()
	return dir
}

func mustWrite(t testing.TB, path, data string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t testing.TB, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// loadText writes text as a fixture and loads it.
func loadText(t testing.TB, text string) (*Config, string, error) {
	t.Helper()
	dir := writeFixture(t, text)
	cfg, err := Load(filepath.Join(dir, "portico.toml"))
	return cfg, dir, err
}

func mustLoad(t *testing.T, text string) (*Config, string) {
	t.Helper()
	cfg, dir, err := loadText(t, text)
	if err != nil {
		t.Fatalf("Load: unexpected error:\n%v", err)
	}
	return cfg, dir
}

// TestLoadErrors loads every testdata/errors/NAME.toml and compares the
// error text with NAME.golden. Run `go test -run TestLoadErrors -update`
// after a deliberate change of wording, and read the diff.
func TestLoadErrors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "errors", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no cases in testdata/errors")
	}
	sort.Strings(files)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, dir, err := loadText(t, string(text))
			if err == nil {
				t.Fatalf("Load succeeded, want an error (config: %+v)", cfg)
			}
			if cfg != nil {
				t.Errorf("Load returned a config along with an error")
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error is %T, want Problems: %v", err, err)
			}
			if len(probs) == 0 {
				t.Fatal("empty Problems")
			}
			for _, p := range probs {
				if p.Pos.File == "" || p.Pos.Line < 1 {
					t.Errorf("problem without file and line: %q", p.Error())
				}
				if !strings.HasPrefix(p.Pos.File, dir) {
					t.Errorf("problem names a file outside the case: %q", p.Error())
				}
			}
			got := strings.ReplaceAll(err.Error(), dir, dirPlaceholder) + "\n"
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("error text differs from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
