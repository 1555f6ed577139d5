// Package cli implements portico's subcommands: flag parsing, signals and
// the one-line error messages a user sees. The work itself lives in the
// config and server packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"portico/internal/config"
	"portico/internal/server"
)

// Main runs portico with args (without the program name) and returns the
// process exit code: 0 done, 1 failed, 2 a usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		io.WriteString(stderr, usageText(cmds))
		return 2
	}
	switch args[0] {
	case "--version", "-version", "-v":
		args = []string{"version"}
	case "-h", "--help", "-help":
		args = []string{"help"}
	}
	c := findCommand(cmds, args[0])
	if c == nil {
		fmt.Fprintf(stderr, "portico: unknown command %q (see 'portico help')\n", args[0])
		return 2
	}
	inv, err := parseArgs(c, args[1:])
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, commandHelp(c))
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "portico %s: %v (see 'portico %s --help')\n", c.name, err, c.name)
		return 2
	}
	return c.run(inv, stdout, stderr)
}

// loadConfigArgs loads the config file a command names (-c FILE, or FILE
// as its argument). done means the command should exit with code now.
func loadConfigArgs(inv invocation, stderr io.Writer) (file string, cfg *config.Config, code int, done bool) {
	file = inv.str("config")
	if len(inv.args) > 0 {
		file = inv.args[0]
	}
	cfg, err := config.Load(file)
	if err != nil {
		printProblems(stderr, err)
		return "", nil, 1, true
	}
	return file, cfg, 0, false
}

func cmdCheck(inv invocation, stdout, stderr io.Writer) int {
	_, cfg, code, done := loadConfigArgs(inv, stderr)
	if done {
		return code
	}
	// The same provision step as `run` (every handler validates and is
	// built), so check and run never disagree; but nothing long-lived is
	// started: no worker pool, no health check, no listener. Each WSGI app
	// is imported once, in one child that is killed with its group.
	t, err := server.Provision(cfg, server.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	err = t.Check()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Close(ctx)
	cancel()
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// printProblems prints each line of a config or build error.
func printProblems(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			fmt.Fprintln(w, line)
		}
	}
}

func cmdRun(inv invocation, stdout, stderr io.Writer) int {
	file, cfg, code, done := loadConfigArgs(inv, stderr)
	if done {
		return code
	}
	return runServer(cfg, runOptions{reload: func() (*config.Config, error) { return config.Load(file) }}, stdout, stderr)
}

func cmdReload(inv invocation, stdout, stderr io.Writer) int {
	file, cfg, code, done := loadConfigArgs(inv, stderr)
	if done {
		return code
	}
	if cfg.Server.Admin == "" {
		fmt.Fprintf(stderr, "portico reload: %s sets no server.admin address; send SIGHUP to the portico process instead\n", file)
		return 1
	}
	host, port, _ := net.SplitHostPort(cfg.Server.Admin)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 60 * time.Second}
	req, err := http.NewRequest(http.MethodPost, "http://"+net.JoinHostPort(host, port)+"/reload", nil)
	if err != nil {
		fmt.Fprintf(stderr, "portico reload: %v\n", err)
		return 1
	}
	req.Header.Set("Content-Type", "application/json") // the admin refuses simple types (CSRF)
	if cfg.Server.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Server.AdminToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "portico reload: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "portico reload: %s\n", strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintln(stdout, "reloaded")
	return 0
}
