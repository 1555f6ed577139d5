package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errHelp is returned by parseArgs for -h/--help.
var errHelp = errors.New("help requested")

// parseArgs parses a command's arguments the GNU way, from the table:
//
//	--bind=ADDR  --bind ADDR  -b ADDR  -bADDR   a flag with a value
//	--cgi  --browse=false                       a boolean flag
//	serve 8080 --cgi                            flags after arguments too
//	--                                          everything after is an argument
//
// A single dash before a long name (-bind, -config=FILE) is accepted too:
// Go's flag package took it, and older scripts may use it. Errors are one
// line, without the program name.
func parseArgs(cmd *command, args []string) (invocation, error) {
	inv := invocation{cmd: cmd, values: map[string]string{}}
	flags := cmd.allFlags()
	for _, f := range flags {
		switch {
		case f.def != "":
			inv.values[f.long] = f.def
		case f.isBool():
			inv.values[f.long] = "false"
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			inv.args = append(inv.args, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			inv.args = append(inv.args, a)
			continue
		}
		f, written, value, hasValue, err := lookupFlag(flags, a)
		if err != nil {
			return inv, err
		}
		if f.long == helpFlag.long {
			return inv, errHelp
		}
		if f.isBool() {
			if !hasValue {
				value = "true"
			}
			b, err := strconv.ParseBool(value)
			if err != nil {
				return inv, fmt.Errorf("%s takes true or false, not %q", written, value)
			}
			inv.values[f.long] = strconv.FormatBool(b)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return inv, fmt.Errorf("%s needs a value (%s)", written, f.arg)
			}
			i++
			value = args[i]
		}
		inv.values[f.long] = value
	}
	if len(inv.args) > cmd.maxArgs {
		extra := inv.args[cmd.maxArgs:]
		if cmd.maxArgs == 0 {
			return inv, fmt.Errorf("takes no arguments, got %q", extra)
		}
		return inv, fmt.Errorf("too many arguments %q (at most %d: %s)", extra, cmd.maxArgs, cmd.args)
	}
	return inv, nil
}

// lookupFlag finds the flag an argument starting with "-" names. written is
// the flag as the user wrote it (for messages); value is the part after
// "=" (long forms) or after the letter (-bADDR).
func lookupFlag(flags []flagDef, a string) (f flagDef, written, value string, hasValue bool, err error) {
	if strings.HasPrefix(a, "--") {
		name, v, has := strings.Cut(a[2:], "=")
		for _, f := range flags {
			if f.long == name {
				return f, "--" + name, v, has, nil
			}
		}
		return flagDef{}, "", "", false, fmt.Errorf("unknown flag --%s", name)
	}
	body := a[1:]
	if name, v, has := strings.Cut(body, "="); len(name) > 1 {
		for _, f := range flags {
			if f.long == name { // Go-style -name or -name=value
				return f, "--" + name, v, has, nil
			}
		}
	}
	for _, f := range flags {
		if f.short != "" && strings.HasPrefix(body, f.short) {
			rest := body[len(f.short):]
			switch {
			case rest == "":
				return f, "-" + f.short, "", false, nil
			case !f.isBool():
				return f, "-" + f.short, strings.TrimPrefix(rest, "="), true, nil
			}
		}
	}
	return flagDef{}, "", "", false, fmt.Errorf("unknown flag %s", a)
}
