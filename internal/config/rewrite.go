package config

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// Rewrite is one internal rewrite of a site ([[site.rewrite]]): a request
// whose decoded path matches From is routed, and served, as To (nginx
// `rewrite ... last`, Apache RewriteRule). The client sees no redirect;
// the access log keeps the URI it sent.
type Rewrite struct {
	// From is a regular expression (Go RE2 syntax) matched against the
	// decoded request path, e.g. "^/blog/(\\d+)$".
	From string `toml:"from"`
	// To is the new path, with $1, ${name} for From's groups, e.g.
	// "/posts/$1". It must start with "/". A "?query" part replaces the
	// query; the client's query, if any, is appended to it after "&".
	To string `toml:"to"`
}

// Request ID modes of server.request_id.
const (
	RequestIDOff      = "off"
	RequestIDGenerate = "generate"
	RequestIDPass     = "pass"
)

// checkRewrites validates [[site.rewrite]] tables: From compiles, To is a
// path whose $N name existing groups.
func checkRewrites(add addFunc, ps *positions, base string, rules []Rewrite) {
	for i, r := range rules {
		rb := fmt.Sprintf("%s.rewrite[%d]", base, i)
		if r.From == "" {
			add(ps, rb, "rewrite needs from (a regular expression)")
			continue
		}
		re, err := regexp.Compile(r.From)
		if err != nil {
			add(ps, rb+".from", "rewrite from %q: %v", r.From, unwrapRegexpError(err))
			continue
		}
		if !strings.HasPrefix(r.To, "/") {
			add(ps, rb+".to", "rewrite to %q must be a path starting with \"/\"", r.To)
		} else if hasCtl(r.To) || strings.ContainsAny(r.To, " #") {
			add(ps, rb+".to", "rewrite to %q must not hold spaces, \"#\" or control characters", r.To)
		}
		for _, m := range groupRefRE.FindAllStringSubmatch(r.To, -1) {
			name := m[1] + m[2]
			if n, err := strconv.Atoi(name); err == nil {
				if n > re.NumSubexp() {
					add(ps, rb+".to", "rewrite to %q: $%d but from has %d group(s)", r.To, n, re.NumSubexp())
				}
			} else if re.SubexpIndex(name) < 0 {
				add(ps, rb+".to", "rewrite to %q: from has no group named %q", r.To, name)
			}
		}
	}
}

// groupRefRE finds $N, ${N} and ${name} in a rewrite target.
var groupRefRE = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)\}|([0-9]+))`)

func unwrapRegexpError(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code) + ": " + se.Expr
	}
	return err.Error()
}

// Placeholders that header rule values may hold.
var headerPlaceholders = map[string]bool{
	"{client_ip}": true, "{host}": true, "{request_id}": true,
	"{method}": true, "{path}": true, "{scheme}": true,
}

// placeholderRE finds {word} in a header value.
var placeholderRE = regexp.MustCompile(`\{[a-z_]+\}`)

// checkPlaceholders reports {word}s that are not placeholders.
func checkPlaceholders(add addFunc, ps *positions, path, name, value string) {
	for _, m := range placeholderRE.FindAllString(value, -1) {
		if !headerPlaceholders[m] {
			add(ps, path, "header %s: unknown placeholder %s (known: {client_ip}, {host}, {request_id}, {method}, {path}, {scheme})", name, m)
		}
	}
}

// checkRequestRules validates request header rules: as response rules,
// less always, and never Host (proxy.host sets what goes upstream).
func checkRequestRules(add addFunc, ps *positions, base string, rules []HeaderRule) {
	checkHeaderRules(add, ps, base, rules)
	for i, r := range rules {
		rb := fmt.Sprintf("%s[%d]", base, i)
		if r.Always {
			add(ps, rb+".always", "always applies to response rules only")
		}
		for _, names := range [][]string{sortedKeys(r.Set), sortedKeys(r.Add), r.Remove} {
			for _, n := range names {
				if strings.EqualFold(n, "Host") {
					add(ps, rb, "request rules cannot change Host (set proxy.host instead)")
				}
			}
		}
	}
}
