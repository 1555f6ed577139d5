package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// TestParseArgs: every flag of serve and the config commands in its long,
// short, "=" and Go-style forms, before and after the argument.
func TestParseArgs(t *testing.T) {
	cmds := commands()
	serve, check := findCommand(cmds, "serve"), findCommand(cmds, "check")
	tests := []struct {
		name  string
		cmd   *command
		args  []string
		want  map[string]string // values that must be set
		wantA []string
	}{
		{"defaults", serve, nil, map[string]string{"bind": "", "directory": ".", "browse": "true", "cgi": "false", "spa": "false", "open": "false", "proxy": ""}, nil},
		{"bind long", serve, []string{"--bind", "127.0.0.1"}, map[string]string{"bind": "127.0.0.1"}, nil},
		{"bind long=", serve, []string{"--bind=::1"}, map[string]string{"bind": "::1"}, nil},
		{"bind short", serve, []string{"-b", "127.0.0.1"}, map[string]string{"bind": "127.0.0.1"}, nil},
		{"bind short glued", serve, []string{"-b127.0.0.1"}, map[string]string{"bind": "127.0.0.1"}, nil},
		{"bind go style", serve, []string{"-bind", "h"}, map[string]string{"bind": "h"}, nil},
		{"directory long", serve, []string{"--directory", "dist"}, map[string]string{"directory": "dist"}, nil},
		{"directory long=", serve, []string{"--directory=dist"}, map[string]string{"directory": "dist"}, nil},
		{"directory short", serve, []string{"-d", "dist"}, map[string]string{"directory": "dist"}, nil},
		{"directory go style=", serve, []string{"-directory=dist"}, map[string]string{"directory": "dist"}, nil},
		{"cgi", serve, []string{"--cgi"}, map[string]string{"cgi": "true"}, nil},
		{"cgi=false", serve, []string{"--cgi=false"}, map[string]string{"cgi": "false"}, nil},
		{"spa", serve, []string{"--spa"}, map[string]string{"spa": "true"}, nil},
		{"spa go style", serve, []string{"-spa"}, map[string]string{"spa": "true"}, nil},
		{"browse=false", serve, []string{"--browse=false"}, map[string]string{"browse": "false"}, nil},
		{"browse=0", serve, []string{"--browse=0"}, map[string]string{"browse": "false"}, nil},
		{"open", serve, []string{"--open"}, map[string]string{"open": "true"}, nil},
		{"proxy", serve, []string{"--proxy", "http://a,http://b"}, map[string]string{"proxy": "http://a,http://b"}, nil},
		{"proxy=", serve, []string{"--proxy=http://a"}, map[string]string{"proxy": "http://a"}, nil},
		{"flags after the port", serve, []string{"3000", "-d", "dist", "--spa"}, map[string]string{"directory": "dist", "spa": "true"}, []string{"3000"}},
		{"flags around the port", serve, []string{"--cgi", "8080", "--bind=127.0.0.1"}, map[string]string{"cgi": "true", "bind": "127.0.0.1"}, []string{"8080"}},
		{"double dash", serve, []string{"--", "-1"}, nil, []string{"-1"}},
		{"last wins", serve, []string{"-d", "a", "--directory", "b"}, map[string]string{"directory": "b"}, nil},
		{"config default", check, nil, map[string]string{"config": "portico.toml"}, nil},
		{"config long", check, []string{"--config", "x.toml"}, map[string]string{"config": "x.toml"}, nil},
		{"config long=", check, []string{"--config=x.toml"}, map[string]string{"config": "x.toml"}, nil},
		{"config short", check, []string{"-c", "x.toml"}, map[string]string{"config": "x.toml"}, nil},
		{"config short glued", check, []string{"-cx.toml"}, map[string]string{"config": "x.toml"}, nil},
		{"config as argument", check, []string{"x.toml"}, map[string]string{"config": "portico.toml"}, []string{"x.toml"}},
	}
	for _, tt := range tests {
		inv, err := parseArgs(tt.cmd, tt.args)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		for k, v := range tt.want {
			if inv.values[k] != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, inv.values[k], v)
			}
		}
		if !reflect.DeepEqual(inv.args, tt.wantA) {
			t.Errorf("%s: args %q, want %q", tt.name, inv.args, tt.wantA)
		}
	}
}

// TestEveryTableFlagParses walks the table itself, so a flag added later
// is covered in all its forms without touching this test.
func TestEveryTableFlagParses(t *testing.T) {
	for _, c := range commands() {
		for _, f := range c.flags {
			value := "v"
			if f.isBool() {
				value = "true"
			}
			forms := [][]string{{"--" + f.long + "=" + value}}
			if !f.isBool() {
				forms = append(forms, []string{"--" + f.long, value})
				if f.short != "" {
					forms = append(forms, []string{"-" + f.short, value}, []string{"-" + f.short + value})
				}
			} else {
				forms = append(forms, []string{"--" + f.long})
			}
			for _, args := range forms {
				inv, err := parseArgs(c, args)
				if err != nil || inv.values[f.long] != value {
					t.Errorf("%s %q: %q, %v; want %s = %q", c.name, args, inv.values[f.long], err, f.long, value)
				}
			}
		}
		for _, h := range []string{"-h", "--help", "-help"} {
			if _, err := parseArgs(c, []string{h}); err != errHelp {
				t.Errorf("%s %s: %v, want help", c.name, h, err)
			}
		}
	}
}

// TestBadCommandLines: one clear line on stderr, exit 2, nothing on stdout.
func TestBadCommandLines(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--no-such-flag"}, "portico serve: unknown flag --no-such-flag (see 'portico serve --help')"},
		{[]string{"serve", "-x"}, "unknown flag -x"},
		{[]string{"serve", "--bind"}, "--bind needs a value (ADDR)"},
		{[]string{"serve", "-d"}, "-d needs a value (DIR)"},
		{[]string{"serve", "--cgi=maybe"}, `--cgi takes true or false, not "maybe"`},
		{[]string{"serve", "1", "2"}, `too many arguments ["2"]`},
		{[]string{"serve", "http"}, `"http" is not a port number`},
		{[]string{"serve", "70000"}, `"70000" is not a port number`},
		{[]string{"check", "--config"}, "--config needs a value (FILE)"},
		{[]string{"check", "a.toml", "b.toml"}, "too many arguments"},
		{[]string{"version", "now"}, "portico version: takes no arguments"},
		{[]string{"completion"}, "name a shell"},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh"`},
		{[]string{"help", "nope"}, `unknown command "nope"`},
		{[]string{"frobnicate"}, `portico: unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Main(tt.args, &out, &errOut)
		e := errOut.String()
		if code != 2 || out.Len() != 0 || strings.Count(e, "\n") != 1 || !strings.Contains(e, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tt.args, code, out.String(), e, tt.want)
		}
	}
}
