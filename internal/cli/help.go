package cli

import (
	"fmt"
	"io"
	"strings"
)

const helpWidth = 79

// usageText is what `portico`, `portico help` and `portico --help` print.
func usageText(cmds []*command) string {
	var b strings.Builder
	b.WriteString("portico: a web server for files, CGI scripts and app servers\n\n")
	b.WriteString("Usage: portico COMMAND [OPTION]... [ARGUMENT]...\n\nCommands:\n")
	for _, c := range cmds {
		writeColumns(&b, "  "+c.name, c.summary, 14)
	}
	b.WriteString("\nRun 'portico help COMMAND' or 'portico COMMAND --help' for its options and\n")
	b.WriteString("examples, 'portico man | man -l -' for the manual.\n")
	return b.String()
}

// synopsis is a command's usage line after "portico ".
func (c *command) synopsis() string {
	s := c.name
	if len(c.flags) > 0 {
		s += " [OPTION]..."
	}
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// flagLabel renders a flag as --help shows it: "-b, --bind=ADDR".
func flagLabel(f flagDef) string {
	label := "    "
	if f.short != "" {
		label = "-" + f.short + ", "
	}
	label += "--" + f.long
	if !f.isBool() {
		label += "=" + f.arg
	}
	return label
}

// commandHelp renders `portico CMD --help` in the GNU style: usage,
// description, options, examples.
func commandHelp(c *command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: portico %s\n", c.synopsis())
	for _, line := range c.about {
		b.WriteString(line + "\n")
	}
	b.WriteString("\nOptions:\n")
	for _, f := range c.allFlags() {
		writeColumns(&b, "  "+flagLabel(f), flagHelp(f), 30)
	}
	if len(c.examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, e := range c.examples {
			b.WriteString("  " + e.line + "\n")
			if e.what != "" {
				b.WriteString("      " + e.what + "\n")
			}
		}
	}
	b.WriteString("\nRun 'portico help' for all commands.\n")
	return b.String()
}

// flagHelp is a flag's help line with its default when the help does not
// already say it.
func flagHelp(f flagDef) string {
	h := f.help
	if f.def != "" && !f.isBool() && !strings.Contains(h, "default") {
		h += fmt.Sprintf(" (default %s)", f.def)
	}
	return h
}

// writeColumns writes label then text wrapped at helpWidth, the text
// starting at column col (on the next line when the label is too long).
func writeColumns(b *strings.Builder, label, text string, col int) {
	b.WriteString(label)
	pos := len(label)
	if pos >= col-1 {
		b.WriteString("\n")
		pos = 0
	}
	b.WriteString(strings.Repeat(" ", col-pos))
	pos = col
	for i, w := range strings.Fields(text) {
		if i > 0 {
			if pos+1+len(w) > helpWidth {
				b.WriteString("\n" + strings.Repeat(" ", col))
				pos = col
			} else {
				b.WriteString(" ")
				pos++
			}
		}
		b.WriteString(w)
		pos += len(w)
	}
	b.WriteString("\n")
}

// cmdHelp is `portico help [COMMAND]`.
func cmdHelp(inv invocation, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(inv.args) == 0 {
		io.WriteString(stdout, usageText(cmds))
		return 0
	}
	c := findCommand(cmds, inv.args[0])
	if c == nil {
		fmt.Fprintf(stderr, "portico help: unknown command %q (see 'portico help')\n", inv.args[0])
		return 2
	}
	io.WriteString(stdout, commandHelp(c))
	return 0
}
