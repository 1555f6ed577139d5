package config

import (
	"fmt"
	"net/textproto"
	"strings"
)

// framingFields are the header fields a header rule may not touch: they
// frame the message (a wrong one desynchronises the connection, RFC 9112
// section 6) or belong to the engine.
var framingFields = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Upgrade": true, "Trailer": true, "Date": true,
}

// checkHeaderRules validates [[site.route.headers]] tables: globs, field
// names and values. It is the one check: the layer that runs the rules
// trusts it.
func checkHeaderRules(add func(*positions, string, string, ...any), ps *positions, base string, rules []HeaderRule) {
	for i, r := range rules {
		rb := fmt.Sprintf("%s[%d]", base, i)
		if strings.Contains(r.Match, "***") {
			add(ps, rb+".match", "match %q: \"***\" is not a glob (use \"**\" for any run of characters, \"*\" within one path segment)", r.Match)
		}
		if hasCtl(r.Match) {
			add(ps, rb+".match", "match %q must not hold control characters", r.Match)
		}
		if len(r.Set) == 0 && len(r.Add) == 0 && len(r.Remove) == 0 {
			add(ps, rb, "header rule does nothing: give it set, add or remove")
		}
		check := func(key, name string) {
			canon := textproto.CanonicalMIMEHeaderKey(name)
			switch {
			case !validHeaderName(name):
				add(ps, rb+"."+key, "header name %q is not valid", name)
			case framingFields[canon]:
				add(ps, rb+"."+key, "header %s frames the message and cannot be changed by a rule", canon)
			}
		}
		for _, k := range sortedKeys(r.Set) {
			check("set", k)
			if hasCtl(r.Set[k]) {
				add(ps, rb+".set", "header %s: the value must not hold control characters (such as a line break)", k)
			}
			checkPlaceholders(add, ps, rb+".set", k, r.Set[k])
		}
		for _, k := range sortedKeys(r.Add) {
			check("add", k)
			if hasCtl(r.Add[k]) {
				add(ps, rb+".add", "header %s: the value must not hold control characters (such as a line break)", k)
			}
			checkPlaceholders(add, ps, rb+".add", k, r.Add[k])
		}
		for _, k := range r.Remove {
			check("remove", k)
		}
	}
}
