package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzLoad writes the input as a config file next to the usual fixture
// folders and loads it. Load must never panic, and every error must be a
// Problems whose every entry names a file.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(minimalSite))
	f.Add([]byte("[server]\ninclude = [\"*.toml\"]\n" + minimalSite))
	f.Add([]byte("[[site]]\nroute = [{ path = \"/\", cgi = { root = \"cgi-bin\", timeout = 5 } }]\n"))
	f.Add([]byte("[server]\nmax_body_size = -1\nidle_timeout = 1.5\n"))
	f.Add([]byte("[[site]]\nhosts = [\"a.test\"]\n[[site]]\nhosts = [\"A.test\"]\n"))
	f.Add([]byte("[site]\n[site.route]\npath = 1\n"))
	files, _ := filepath.Glob(filepath.Join("testdata", "errors", "*.toml"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "public"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "cgi-bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "portico.toml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config and nil error")
			}
			if len(cfg.Sites) == 0 {
				t.Fatal("a config without sites loaded")
			}
			return
		}
		if cfg != nil {
			t.Fatal("config returned along with an error")
		}
		var probs Problems
		if !errors.As(err, &probs) {
			t.Fatalf("error is %T, not Problems: %v", err, err)
		}
		if len(probs) == 0 {
			t.Fatal("empty Problems")
		}
		for _, p := range probs {
			if p.Pos.File == "" {
				t.Fatalf("problem without a file: %q", p.Error())
			}
			if !strings.HasPrefix(p.Pos.File, dir) {
				t.Fatalf("problem names a file outside the test: %q", p.Error())
			}
			if p.Msg == "" {
				t.Fatalf("problem without a message at %v", p.Pos)
			}
			if p.Pos.Line < 1 {
				t.Fatalf("problem without a line: %q", p.Error())
			}
		}
	})
}

// FuzzParseSize: ParseSize never panics, never returns a negative size
// with a nil error, and agrees with itself on what it printed.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1024", "512KB", "64MB", "1GB", "2TB", "64mb", "8k", " 1 G ", "-1", "1.5GB", "9999999999999TB", "4194304TB", "MB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseSize(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 || n > 1<<62 {
			t.Fatalf("ParseSize(%q) = %d, out of range", s, n)
		}
		b, _ := n.MarshalText()
		m, err := ParseSize(string(b))
		if err != nil || m != n {
			t.Fatalf("ParseSize(%q) = %d, but its text %q parses as %d, %v", s, n, b, m, err)
		}
	})
}

// TestFuzzSeeds: the checked-in FuzzLoad seeds named valid_* load without
// error in the fuzz target's folder layout, and invalid_* fail, so the
// corpus covers both sides.
func TestFuzzSeeds(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzLoad", "*"))
	seen := 0
	for _, file := range files {
		name := filepath.Base(file)
		wantOK := strings.HasPrefix(name, "valid_")
		if !wantOK && !strings.HasPrefix(name, "invalid_") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		lit = strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")")
		text, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seen++
		dir := t.TempDir()
		mustMkdir(t, filepath.Join(dir, "public"))
		mustMkdir(t, filepath.Join(dir, "cgi-bin"))
		mustWrite(t, filepath.Join(dir, "portico.toml"), text)
		_, err = Load(filepath.Join(dir, "portico.toml"))
		if (err == nil) != wantOK {
			t.Errorf("%s: Load error = %v, want ok=%v", name, err, wantOK)
		}
	}
	if seen < 4 {
		t.Errorf("only %d named seeds in testdata/fuzz/FuzzLoad", seen)
	}
}
