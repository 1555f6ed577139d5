package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// fragmentMarker, on the line before a ```toml block (blank lines
// between allowed), says the block is a piece of a config that cannot be
// checked on its own. Keep such blocks few: most pieces are completed
// into a config by completeFragment and checked.
const fragmentMarker = "<!-- fragment -->"

// tomlBlock is one ```toml code block of a Markdown file.
type tomlBlock struct {
	line     int // line of the opening fence
	text     string
	fragment bool // marked with fragmentMarker
}

// tomlBlocks returns the ```toml blocks of a Markdown text, with the
// indentation of their fence removed (blocks inside list items).
func tomlBlocks(md string) []tomlBlock {
	var out []tomlBlock
	var cur *tomlBlock
	var indent string
	marked := false
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if strings.HasPrefix(trimmed, "```") {
				out = append(out, *cur)
				cur = nil
				continue
			}
			cur.text += strings.TrimPrefix(line, indent) + "\n"
			continue
		}
		switch {
		case strings.HasPrefix(trimmed, "```toml"):
			indent = line[:len(line)-len(strings.TrimLeft(line, " \t"))]
			cur = &tomlBlock{line: n, fragment: marked}
			marked = false
		case trimmed == fragmentMarker:
			marked = true
		case trimmed != "":
			marked = false
		}
	}
	return out
}

var (
	siteHeader  = regexp.MustCompile(`(?m)^\s*\[\[site\]\]\s*(#.*)?$`)
	routeHeader = regexp.MustCompile(`(?m)^\s*\[\[site\.route\]\]\s*(#.*)?$`)
)

// completeFragment turns the two common kinds of partial config into a
// whole one: routes without their [[site]] get one in front, and a
// [server]-only block gets a site after it. Anything else is returned as
// written.
func completeFragment(cfg string) string {
	if siteHeader.MatchString(cfg) || strings.Contains(cfg, "site = ") {
		return cfg
	}
	if routeHeader.MatchString(cfg) {
		return "[[site]]\n" + cfg
	}
	return cfg + "\n[[site]]\n[[site.route]]\npath = \"/\"\nredirect = { to = \"https://example.test/\" }\n"
}

// scaffold creates under root what a config of the docs refers to, so that
// `portico check` can accept it: static and cgi roots, wsgi folders and a
// module with the app callable, TLS certificate and key files, htpasswd
// files, log folders and plain included files. cfgDir is the folder of the config
// inside root; absolute paths are rewritten to lie under root. It returns
// the config text with those rewrites.
func scaffold(t *testing.T, root, cfgDir, cfg string) string {
	t.Helper()
	var doc map[string]any
	if err := toml.Unmarshal([]byte(cfg), &doc); err != nil {
		// Not TOML: portico check says so, with the line.
		return cfg
	}
	// place maps a path of the config to where it lives on this machine.
	place := func(p string) string {
		if filepath.IsAbs(p) {
			cfg = strings.ReplaceAll(cfg, `"`+p+`"`, `"`+filepath.Join(root, p)+`"`)
			return filepath.Join(root, p)
		}
		abs := filepath.Join(cfgDir, p)
		if !strings.HasPrefix(abs, root+string(filepath.Separator)) {
			t.Errorf("the config names %q, which leads outside its folder's parents", p)
		}
		return abs
	}
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	str := func(m map[string]any, key string) string {
		s, _ := m[key].(string)
		return s
	}
	if server, ok := doc["server"].(map[string]any); ok {
		for _, key := range []string{"access_log", "error_log"} {
			if v := str(server, key); v != "" && v != "off" && v != "stdout" && v != "stderr" {
				mkdir(filepath.Dir(place(v)))
			}
		}
		if acme, ok := server["acme"].(map[string]any); ok && str(acme, "ca_root") != "" {
			cert, _ := selfSigned(t, "ca.example.test")
			p := place(str(acme, "ca_root"))
			mkdir(filepath.Dir(p))
			os.WriteFile(p, []byte(cert), 0o644)
		}
		if incs, ok := server["include"].([]any); ok {
			for _, inc := range incs {
				s, _ := inc.(string)
				if s != "" && !strings.ContainsAny(s, "*?[") {
					p := place(s)
					mkdir(filepath.Dir(p))
					writeFiles(t, filepath.Dir(p), map[string]string{filepath.Base(p): ""})
				}
			}
		}
	}
	sites, _ := doc["site"].([]any)
	for _, s := range sites {
		site, _ := s.(map[string]any)
		if tls, ok := site["tls"].(map[string]any); ok && str(tls, "cert") != "" && str(tls, "key") != "" {
			cert, key := selfSigned(t, "example.test")
			cp, kp := place(str(tls, "cert")), place(str(tls, "key"))
			mkdir(filepath.Dir(cp))
			mkdir(filepath.Dir(kp))
			os.WriteFile(cp, []byte(cert), 0o644)
			os.WriteFile(kp, []byte(key), 0o600)
		}
		// An htpasswd file with one bcrypt user (cost 4, quick to make).
		htpasswd := func(table map[string]any) {
			if ba, ok := table["basic_auth"].(map[string]any); ok && str(ba, "htpasswd") != "" {
				p := place(str(ba, "htpasswd"))
				mkdir(filepath.Dir(p))
				os.WriteFile(p, []byte("alice:$2y$04$abcdefghijklmnopqrstuu1m6JSXq7a8S9JoYtBDSfqBwx/VS0RHK\n"), 0o644)
			}
		}
		htpasswd(site)
		routes, _ := site["route"].([]any)
		for _, r := range routes {
			route, _ := r.(map[string]any)
			htpasswd(route)
			for _, kind := range []string{"static", "cgi", "fastcgi"} {
				if h, ok := route[kind].(map[string]any); ok && str(h, "root") != "" {
					mkdir(place(str(h, "root")))
				}
			}
			if w, ok := route["wsgi"].(map[string]any); ok {
				dir := cfgDir
				if d := str(w, "dir"); d != "" {
					dir = place(d)
				}
				mkdir(dir)
				writeWSGIApp(t, dir, str(w, "app"))
				// A virtualenv's interpreter: a link to python3, as in a
				// real virtualenv.
				if py := str(w, "python"); strings.Contains(py, "/") {
					p := place(py)
					mkdir(filepath.Dir(p))
					sys, err := exec.LookPath("python3")
					if err != nil {
						t.Fatalf("python3 not found: %v", err)
					}
					if err := os.Symlink(sys, p); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	return cfg
}

// writeWSGIApp writes the module of app ("pkg.mod:callable") under dir,
// with a callable that answers 200.
func writeWSGIApp(t *testing.T, dir, app string) {
	t.Helper()
	mod, callable, ok := strings.Cut(app, ":")
	if !ok || mod == "" || callable == "" {
		return
	}
	parts := strings.Split(mod, ".")
	files := map[string]string{}
	for i := 1; i < len(parts); i++ {
		files[filepath.Join(append(parts[:i:i], "__init__.py")...)] = ""
	}
	files[filepath.Join(parts...)+".py"] = fmt.Sprintf(
		"def %s(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'ok']\n", callable)
	writeFiles(t, dir, files)
}

// TestDocsConfigsCheck runs `portico check` on every ```toml block of
// docs/*.md, as a reader would after copying it: the folders, files and
// WSGI modules it names are created first (in a temporary folder),
// partial blocks are completed, and only blocks marked
// <!-- fragment --> are left out.
func TestDocsConfigsCheck(t *testing.T) {
	// Slow and independent: runs beside the other parallel tests once
	// the sequential ones are done.
	t.Parallel()
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	checked, skipped := 0, 0
	for _, page := range pages {
		md, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range tomlBlocks(string(md)) {
			where := fmt.Sprintf("docs/%s:%d", filepath.Base(page), b.line)
			if b.fragment {
				skipped++
				continue
			}
			checked++
			t.Run(where, func(t *testing.T) {
				root := t.TempDir()
				dir := filepath.Join(root, "etc", "portico")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				cfg := scaffold(t, root, dir, completeFragment(b.text))
				writeFiles(t, dir, map[string]string{"portico.toml": cfg})
				code, stdout, stderr := runPortico(t, dir, "check", "-c", "portico.toml")
				if code != 0 || strings.TrimSpace(stdout) != "ok" {
					t.Errorf("%s: portico check exit %d:\n%s%s\nthe config checked:\n%s", where, code, stdout, stderr, cfg)
				}
			})
		}
	}
	t.Logf("%d blocks checked, %d marked %s", checked, skipped, fragmentMarker)
	if checked == 0 {
		t.Errorf("no ```toml block found in docs/*.md")
	}
}

// TestExampleConfigsCheck runs `portico check` on every portico.toml under
// examples/, in place: an example must work as it is in the repository
// (examples/spa once it is built, as .ci/run does).
func TestExampleConfigsCheck(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../examples", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "portico.toml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found only %v under examples/", files)
	}
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "../"), func(t *testing.T) {
			if filepath.Base(filepath.Dir(f)) == "spa" {
				if _, err := os.Stat(filepath.Join(filepath.Dir(f), "dist")); err != nil {
					if testing.Short() {
						t.Skip("examples/spa is not built (-short)")
					}
					t.Fatalf("examples/spa is not built: run `cd examples/spa && npm ci && npm run build` (.ci/run does)")
				}
			}
			code, stdout, stderr := runPortico(t, ".", "check", "-c", f)
			if code != 0 || strings.TrimSpace(stdout) != "ok" {
				t.Errorf("portico check -c %s: exit %d:\n%s%s", f, code, stdout, stderr)
			}
		})
	}
}

// TestDocsCheckerCatchesErrors makes sure the docs check is not vacuous:
// the extractor finds blocks (and only unmarked ones), fragments are
// completed, and a wrong config in a block fails `portico check`.
func TestDocsCheckerCatchesErrors(t *testing.T) {
	md := "# t\n\n```toml\n[[site.route]]\npath = \"/\"\nstatic = { root = \"public\" }\n```\n\n" +
		fragmentMarker + "\n\n```toml\nnot = toml = at all\n```\n\n" +
		"- a list item:\n\n  ```toml\n  [server]\n  acces_log = \"stdout\"\n  ```\n"
	blocks := tomlBlocks(md)
	if len(blocks) != 3 || blocks[0].line != 3 || blocks[0].fragment || !blocks[1].fragment || blocks[2].fragment {
		t.Fatalf("tomlBlocks: %+v", blocks)
	}
	if !strings.HasPrefix(blocks[2].text, "[server]\nacces_log") {
		t.Errorf("indented block not dedented: %q", blocks[2].text)
	}
	for i, want := range []struct {
		code int
		out  string
	}{{0, "ok"}, {-1, ""}, {1, `unknown key "server.acces_log"`}} {
		if blocks[i].fragment {
			continue
		}
		root := t.TempDir()
		dir := filepath.Join(root, "etc", "portico")
		os.MkdirAll(dir, 0o755)
		cfg := scaffold(t, root, dir, completeFragment(blocks[i].text))
		writeFiles(t, dir, map[string]string{"portico.toml": cfg})
		code, stdout, stderr := runPortico(t, dir, "check", "-c", "portico.toml")
		if code != want.code || !strings.Contains(stdout+stderr, want.out) {
			t.Errorf("block %d: exit %d %q %q, want exit %d with %q", i, code, stdout, stderr, want.code, want.out)
		}
	}
}
