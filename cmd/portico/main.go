// Command portico is a web server: static files and single-page apps, CGI,
// reverse proxy with a response cache, and virtual hosts, in one binary.
//
//	portico serve [flags] [PORT]   quick mode, like python3 -m http.server
//	portico run -c FILE            run from a config file
//	portico check -c FILE          validate a config file
//	portico reload -c FILE         ask a running portico to reload (admin address)
//	portico version
//	portico help [COMMAND]         the commands, or one command's options (= COMMAND --help)
//	portico completion bash|zsh|fish
//	portico man                    the manual page (roff)
package main

import (
	"os"

	"portico/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
