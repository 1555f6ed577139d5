package layer

import (
	"net/http"
	"sort"
	"strings"

	"portico/internal/clientip"
	"portico/internal/config"
)

// HeaderRules is the Layer of a route's [[site.route.headers]] tables.
type HeaderRules struct {
	rules []headerRule
	// clients resolves {client_ip} (X-Forwarded-For through trusted
	// proxies, as every other use of the client address).
	clients *clientip.Resolver
}

type headerRule struct {
	match  string // glob; "" matches every path
	base   bool   // match the last path segment only (no "/" in match)
	remove []string
	set    [][2]string
	add    [][2]string
	always bool
	// expand: some set or add value holds a placeholder ("{host}").
	expand bool
}

var _ Layer = (*HeaderRules)(nil)

// NewHeaderRules builds the layer of rules, which config.Validate has
// checked (header names, globs); nil when there are none.
func NewHeaderRules(rules []config.HeaderRule) *HeaderRules {
	if len(rules) == 0 {
		return nil
	}
	hr := &HeaderRules{}
	for _, r := range rules {
		out := headerRule{match: r.Match, base: r.Match != "" && !strings.Contains(r.Match, "/"), always: r.Always}
		for _, name := range r.Remove {
			out.remove = append(out.remove, http.CanonicalHeaderKey(name))
		}
		out.set = sortedFields(r.Set)
		out.add = sortedFields(r.Add)
		for _, kv := range append(append([][2]string(nil), out.set...), out.add...) {
			if strings.Contains(kv[1], "{") {
				out.expand = true
			}
		}
		hr.rules = append(hr.rules, out)
	}
	return hr
}

// sortedFields turns a TOML table into fields in name order, so that two
// values added to one response come out the same way every time.
func sortedFields(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{http.CanonicalHeaderKey(k), v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func (r *headerRule) matches(path string) bool {
	if r.match == "" {
		return true
	}
	if r.base {
		path = path[strings.LastIndexByte(path, '/')+1:]
	}
	return matchGlob(r.match, path)
}

// EditsHeader reports whether a rule matches path.
func (hr *HeaderRules) EditsHeader(path string) bool {
	for i := range hr.rules {
		if hr.rules[i].matches(path) {
			return true
		}
	}
	return false
}

// EditHeader applies the matching rules, in order.
func (hr *HeaderRules) EditHeader(r Request, status int, h HeaderEditor) {
	hr.edit(r, h, addHeaderStatus(status))
}

// edit applies the matching rules to h; statusOK says whether rules
// without always apply.
func (hr *HeaderRules) edit(r Request, h HeaderEditor, statusOK bool) {
	path := r.Path()
	for i := range hr.rules {
		rule := &hr.rules[i]
		if !rule.always && !statusOK || !rule.matches(path) {
			continue
		}
		for _, name := range rule.remove {
			h.DelHeader(name)
		}
		for _, kv := range rule.set {
			v := kv[1]
			if rule.expand {
				v = expand(v, r, hr.clients)
			}
			h.ReplaceHeader(kv[0], v)
		}
		for _, kv := range rule.add {
			v := kv[1]
			if rule.expand {
				v = expand(v, r, hr.clients)
			}
			h.AddHeader(kv[0], v)
		}
	}
}

// addHeaderStatus reports whether rules apply to status without always:
// nginx's add_header list.
func addHeaderStatus(status int) bool {
	switch status {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		return true
	}
	return false
}

// matchGlob reports whether s matches pattern: "**" matches any run of
// characters, "*" any run without "/", "?" one character other than "/";
// everything else matches itself. It does not allocate; its cost is
// bounded by len(pattern) * len(s) (one saved backtrack point per star
// kind, as path globs need).
func matchGlob(pattern, s string) bool {
	// Backtracking points for the last "*" and the last "**".
	starP, starS := -1, -1
	dstarP, dstarS := -1, -1
	p, i := 0, 0
	for i < len(s) || p < len(pattern) {
		if p < len(pattern) {
			switch c := pattern[p]; {
			case c == '*' && p+1 < len(pattern) && pattern[p+1] == '*':
				dstarP, dstarS = p, i
				starP = -1
				p += 2
				continue
			case c == '*':
				starP, starS = p, i
				p++
				continue
			case i < len(s) && (c == '?' && s[i] != '/' || c == s[i]):
				p++
				i++
				continue
			}
		}
		// Mismatch: let the last "*" eat one more character (not a
		// "/"), else the last "**" (any character).
		if starP >= 0 && starS < len(s) && s[starS] != '/' {
			starS++
			p, i = starP+1, starS
			continue
		}
		if dstarP >= 0 && dstarS < len(s) {
			dstarS++
			p, i = dstarP+2, dstarS
			starP = -1
			continue
		}
		return false
	}
	return true
}
