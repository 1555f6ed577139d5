package cli

import "io"

// This file is the one table of portico's commands and flags. The parser
// (parse.go), --help (help.go), the shell completion scripts
// (completion.go) and the man page (man.go) all render it, so a flag added
// here is parsed, documented and completed at once.

// flagDef is one option of a command.
type flagDef struct {
	long  string // "bind": written --bind
	short string // "b": written -b; "" if none
	arg   string // the value's name ("ADDR"); "" for a boolean flag
	def   string // default value ("" = none; a boolean's default is "false" unless "true")
	help  string // one line for --help; the man page uses it too
	// complete says what the shells offer as the value: "file", "dir" or
	// "" (nothing: a free value such as an address).
	complete string
}

// isBool reports whether the flag takes no value (--cgi, --browse=false).
func (f flagDef) isBool() bool { return f.arg == "" }

// example is one command line shown under Examples.
type example struct{ line, what string }

// command is one subcommand.
type command struct {
	name     string
	args     string // positional arguments in the synopsis ("[PORT]")
	summary  string // one line in the command list
	about    []string
	flags    []flagDef
	examples []example
	maxArgs  int
	// argComplete says what the shells offer as positional arguments:
	// "file", "commands", "shells" or "" (nothing).
	argComplete string
	run         func(inv invocation, stdout, stderr io.Writer) int
}

// invocation is a parsed command line.
type invocation struct {
	cmd    *command
	values map[string]string // by long name; defaults filled in
	args   []string
}

func (inv invocation) str(long string) string { return inv.values[long] }
func (inv invocation) on(long string) bool    { return inv.values[long] == "true" }

// helpFlag is added to every command.
var helpFlag = flagDef{long: "help", short: "h", help: "show this help and exit"}

var configFlag = flagDef{long: "config", short: "c", arg: "FILE", def: "portico.toml",
	help: "the config file; a FILE argument does the same", complete: "file"}

// commands returns the table. It is a function, not a variable, so that the
// run fields may refer to functions that use the table (help) without an
// initialization cycle, and so no mutable table is shared.
func commands() []*command {
	return []*command{
		{
			name: "serve", args: "[PORT]", maxArgs: 1,
			summary: "serve a folder now, like python3 -m http.server",
			about: []string{
				"Serve a folder without a config file: static files with directory listings,",
				"optionally CGI scripts, a single-page app's history-mode routing and a",
				"reverse proxy for what is not a file. PORT 0 picks a free port.",
				"Without -b, portico listens on every interface, so other machines can",
				"reach it; it says so when it starts and prints a localhost URL to open.",
			},
			flags: []flagDef{
				{long: "bind", short: "b", arg: "ADDR", help: "address to listen on (default: all interfaces)"},
				{long: "directory", short: "d", arg: "DIR", def: ".", help: "folder to serve (default: the current folder)", complete: "dir"},
				{long: "cgi", help: "run executables under /cgi-bin/ and /htbin/ as CGI scripts"},
				{long: "spa", help: "answer unknown page paths (Accept: text/html) with /index.html; with --proxy, only after the upstream answers 404"},
				{long: "browse", def: "true", help: "list folders without an index.html (--browse=false to turn off)"},
				{long: "open", help: "open the served URL in the default browser (and say if it cannot)"},
				{long: "proxy", arg: "URL[,URL...]", help: "send requests that match no file to these upstreams"},
				{long: "tls", help: "serve HTTPS (and HTTP/2, HTTP/3) with a development certificate from a local CA"},
				{long: "wsgi", arg: "MODULE:CALLABLE", help: "serve this WSGI app (imported from the folder) at /, like gunicorn"},
			},
			examples: []example{
				{"portico serve", "this folder on port 8000, with listings"},
				{"portico serve -d dist --spa 3000", "a Vue/React build, history-mode routing"},
				{"portico serve --cgi", "also run scripts in ./cgi-bin and ./htbin"},
				{"portico serve -b 127.0.0.1 --open 0", "this machine only, a free port, open a browser"},
				{"portico serve --proxy http://127.0.0.1:8081", "files first, then the app"},
				{"portico serve --tls -b 127.0.0.1", "HTTPS on this machine, with a local development CA"},
				{"portico serve --wsgi app:app 8000", "a WSGI app (Flask, Django...) from this folder"},
			},
			run: cmdServe,
		},
		{
			name: "run", args: "[FILE]", maxArgs: 1, argComplete: "file",
			summary: "run from a config file (default ./portico.toml)",
			about: []string{
				"Load the config file, open every listener and serve until SIGTERM or",
				"SIGINT (requests in flight are drained). SIGHUP reloads the file; a",
				"file that does not load leaves the old config running.",
			},
			flags: []flagDef{configFlag},
			examples: []example{
				{"portico run", "run ./portico.toml"},
				{"portico run -c /etc/portico/portico.toml", "the packaged config"},
			},
			run: cmdRun,
		},
		{
			name: "check", args: "[FILE]", maxArgs: 1, argComplete: "file",
			summary: "validate a config file: print ok, or every problem it has",
			about: []string{
				"Load the config file and build every handler as run would, without",
				"listening. Print ok and exit 0, or print every problem found, one per",
				"line as FILE:LINE: reason, and exit 1.",
			},
			flags: []flagDef{configFlag},
			examples: []example{
				{"portico check", "check ./portico.toml"},
				{"portico check -c /etc/portico/portico.toml && systemctl reload portico", "reload only a good config"},
			},
			run: cmdCheck,
		},
		{
			name: "reload", args: "[FILE]", maxArgs: 1, argComplete: "file",
			summary: "ask the running portico to reload (needs server.admin)",
			about: []string{
				"Send POST /reload to the admin address the config file names",
				"(server.admin, with server.admin_token if set). Without an admin",
				"address, send SIGHUP to the portico process instead.",
			},
			flags: []flagDef{configFlag},
			examples: []example{
				{"portico reload -c /etc/portico/portico.toml", "reload the packaged server"},
			},
			run: cmdReload,
		},
		{
			name: "version", summary: "print the version, commit and build date",
			about:    []string{"Print the version, the commit and the build date of this binary."},
			examples: []example{{"portico version", ""}},
			run: func(_ invocation, stdout, _ io.Writer) int {
				io.WriteString(stdout, printVersion()+"\n")
				return 0
			},
		},
		{
			name: "help", args: "[COMMAND]", maxArgs: 1, argComplete: "commands",
			summary: "show the commands, or the options and examples of one",
			about:   []string{"Without COMMAND, list the commands. With one, show its options and examples."},
			examples: []example{
				{"portico help serve", "the same as portico serve --help"},
			},
			run: cmdHelp,
		},
		{
			name: "completion", args: "SHELL", maxArgs: 1, argComplete: "shells",
			summary: "print a shell completion script (bash, zsh or fish)",
			about: []string{
				"Print a script that completes portico's commands, options and",
				"arguments in SHELL: bash, zsh or fish.",
			},
			examples: []example{
				{"source <(portico completion bash)", "bash, this session"},
				{"portico completion bash > /etc/bash_completion.d/portico", "bash, for good"},
				{"portico completion zsh > \"${fpath[1]}/_portico\"", "zsh"},
				{"portico completion fish > ~/.config/fish/completions/portico.fish", "fish"},
			},
			run: cmdCompletion,
		},
		{
			name: "man", summary: "print the manual page (roff)",
			about: []string{"Print portico's manual page in roff, for man(1)."},
			examples: []example{
				{"portico man | man -l -", "read it now"},
				{"portico man > /usr/local/share/man/man1/portico.1", "install it"},
			},
			run: func(_ invocation, stdout, _ io.Writer) int {
				io.WriteString(stdout, manPage(commands()))
				return 0
			},
		},
	}
}

// findCommand looks a command up by name.
func findCommand(cmds []*command, name string) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
	}
	return nil
}

// allFlags is a command's flags plus --help.
func (c *command) allFlags() []flagDef { return append(append([]flagDef{}, c.flags...), helpFlag) }
