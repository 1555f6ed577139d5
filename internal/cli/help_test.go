package cli

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update and read the diff):\n%s", path, got)
	}
}

func runMain(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestHelpGolden: `portico CMD --help`, `portico CMD -h` and `portico help
// CMD` print the same text, kept in testdata/help/CMD.golden.
func TestHelpGolden(t *testing.T) {
	for _, c := range commands() {
		long, _, code := runMain(t, c.name, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d", c.name, code)
		}
		short, _, _ := runMain(t, c.name, "-h")
		viaHelp, _, code := runMain(t, "help", c.name)
		if short != long || viaHelp != long || code != 0 {
			t.Errorf("%s: -h, --help and help %s differ", c.name, c.name)
		}
		if !strings.HasPrefix(long, "Usage: portico "+c.name) || !strings.Contains(long, "Examples:") {
			t.Errorf("%s --help lacks its usage line or examples:\n%s", c.name, long)
		}
		for _, line := range strings.Split(long, "\n") {
			if len(line) > helpWidth {
				t.Errorf("%s --help: line longer than %d columns: %q", c.name, helpWidth, line)
			}
		}
		golden(t, filepath.Join("help", c.name+".golden"), long)
	}
	usage, _, code := runMain(t, "help")
	if code != 0 {
		t.Errorf("help: exit %d", code)
	}
	for _, alias := range []string{"--help", "-h"} {
		if out, _, _ := runMain(t, alias); out != usage {
			t.Errorf("portico %s differs from portico help", alias)
		}
	}
	if _, errOut, code := runMain(t); code != 2 || errOut != usage {
		t.Errorf("no command: exit %d, stderr %q; want the usage and exit 2", code, errOut)
	}
	golden(t, filepath.Join("help", "usage.golden"), usage)
}

func TestManGolden(t *testing.T) {
	man, _, code := runMain(t, "man")
	if code != 0 {
		t.Fatalf("man: exit %d", code)
	}
	golden(t, "portico.1.golden", man)
	// groff, when installed (.ci/run installs it), must read the page
	// without a warning.
	if _, err := exec.LookPath("groff"); err != nil {
		t.Fatal("groff is not installed (apt-get install groff)")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(man)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}

// TestCompletionAndManListEveryFlag: the scripts and the man page are
// rendered from the table; every command and every spelling of every flag
// must be in each.
func TestCompletionAndManListEveryFlag(t *testing.T) {
	cmds := commands()
	outputs := map[string]string{}
	for _, sh := range shells {
		out, _, code := runMain(t, "completion", sh)
		if code != 0 {
			t.Fatalf("completion %s: exit %d", sh, code)
		}
		outputs[sh] = out
	}
	man, _, _ := runMain(t, "man")
	for _, c := range cmds {
		for sh, script := range outputs {
			if !strings.Contains(script, c.name) {
				t.Errorf("%s completion lacks the command %s", sh, c.name)
			}
		}
		if !strings.Contains(man, `\fBportico `+c.name+`\fR`) || !strings.Contains(man, `.SS "portico `+c.name) {
			t.Errorf("man page lacks the command %s", c.name)
		}
		for _, f := range c.allFlags() {
			spellings := map[string][]string{
				"bash": flagWords(f),
				"zsh":  {"--" + f.long},
				"fish": {"-l " + f.long},
			}
			if f.short != "" {
				spellings["zsh"] = append(spellings["zsh"], "-"+f.short)
				spellings["fish"] = append(spellings["fish"], "-s "+f.short)
			}
			for sh, words := range spellings {
				section := completionSection(sh, outputs[sh], c.name)
				for _, w := range words {
					if !strings.Contains(section, w) {
						t.Errorf("%s completion of %s lacks %s", sh, c.name, w)
					}
				}
			}
			manSection := man[strings.Index(man, `.SS "portico `+c.name):]
			if !strings.Contains(manSection, `\fB\-\-`+roff(f.long)+`\fR`) {
				t.Errorf("man page of %s lacks --%s", c.name, f.long)
			}
			if f.short != "" && !strings.Contains(manSection, `\fB\-`+f.short+`\fR`) {
				t.Errorf("man page of %s lacks -%s", c.name, f.short)
			}
		}
	}
}

// completionSection is the part of a script about one command, so a flag
// is found under its own command, not another's.
func completionSection(shell, script, cmd string) string {
	switch shell {
	case "fish":
		var b strings.Builder
		for _, line := range strings.Split(script, "\n") {
			if strings.Contains(line, "__fish_seen_subcommand_from "+cmd+"'") {
				b.WriteString(line + "\n")
			}
		}
		return b.String()
	default:
		// bash and zsh: from "    CMD)" to the next command's label.
		var b strings.Builder
		in := false
		for _, line := range strings.Split(script, "\n") {
			if label := strings.TrimPrefix(line, "    "); label != line && strings.HasSuffix(label, ")") && !strings.ContainsAny(label, " \t") {
				in = label == cmd+")"
			}
			if in {
				b.WriteString(line + "\n")
			}
		}
		return b.String()
	}
}

// shellCmd runs a shell with HOME and the XDG folders in a temporary
// folder: fish and zsh create state files there, and a test must leave
// the user's home alone.
func shellCmd(t *testing.T, name string, args ...string) *exec.Cmd {
	home := t.TempDir()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home+"/.config",
		"XDG_DATA_HOME="+home+"/.local/share", "XDG_CACHE_HOME="+home+"/.cache", "ZDOTDIR="+home)
	return cmd
}

// TestCompletionScriptsParse: each shell reads its script without a
// syntax error (.ci/run installs zsh and fish).
func TestCompletionScriptsParse(t *testing.T) {
	for _, sh := range shells {
		bin, err := exec.LookPath(sh)
		if err != nil {
			t.Errorf("%s is not installed (apt-get install %s)", sh, sh)
			continue
		}
		script, _, _ := runMain(t, "completion", sh)
		path := filepath.Join(t.TempDir(), "portico."+sh)
		if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := shellCmd(t, bin, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
		if sh == "zsh" {
			// Sourced (not autoloaded), the script registers itself.
			out, err := shellCmd(t, bin, "-fc", "autoload -U compinit; compinit -u -D; source "+path+"; print -r -- ${_comps[portico]}").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "_portico" {
				t.Errorf("zsh: sourcing the script did not register _portico: %v\n%s", err, out)
			}
		}
	}
}

// TestBashCompletionCompletes runs the bash function as bash would on TAB.
func TestBashCompletionCompletes(t *testing.T) {
	script, _, _ := runMain(t, "completion", "bash")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		words string // the command line, the last word being completed
		want  []string
	}{
		{"portico se", []string{"serve"}},
		{"portico serve --b", []string{"--bind", "--browse"}},
		{"portico serve -d di", []string{"dist"}},
		{"portico serve --directory = di", []string{"dist"}}, // how bash splits --directory=di
		{"portico check --c", []string{"--config"}},
		{"portico completion ", []string{"bash", "zsh", "fish"}},
		{"portico help ru", []string{"run"}},
	}
	for _, tt := range tests {
		words := strings.Split(tt.words, " ")
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			string(rune('0'+len(words)-1)) + "\n_portico\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := shellCmd(t, "bash", "-c", prog)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", tt.words, err, out)
			continue
		}
		got := strings.Fields(string(out))
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%q: got %q, want %q", tt.words, got, tt.want)
		}
	}
}

// TestFishCompletionCompletes asks fish itself what it would offer.
func TestFishCompletionCompletes(t *testing.T) {
	if _, err := exec.LookPath("fish"); err != nil {
		t.Fatal("fish is not installed (apt-get install fish)")
	}
	script, _, _ := runMain(t, "completion", "fish")
	path := filepath.Join(t.TempDir(), "portico.fish")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := shellCmd(t, "fish", "--no-config", "-c", "source "+path+"; complete -C'portico serve --'").CombinedOutput()
	if err != nil {
		t.Fatalf("fish: %v\n%s", err, out)
	}
	for _, want := range []string{"--bind", "--directory", "--cgi", "--spa", "--browse", "--open", "--proxy", "--help"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("fish offers no %s after 'portico serve --':\n%s", want, out)
		}
	}
}
