package config

import (
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps a key path of one file, written with array indices
// ("site[0].route[2].static.root"), to the line it is declared on. It lets
// validation errors name a file and line although the decoded structs carry
// no positions.
type positions struct {
	file  string
	lines map[string]int
	// kinds records the kind of every value written in the file, by the
	// same indexed key path, so Load can reject values the decoder would
	// accept silently (a bare integer as a duration means nanoseconds).
	kinds map[string]unstable.Kind
	order []string       // keys of kinds in document order, for stable reports
	plain map[string]int // lines by key without indices, built on demand
}

// maxIndexedElems bounds the scalar elements of one array given a line of
// their own; later ones are reported at the array's line.
const maxIndexedElems = 4096

// scanPositions walks the TOML document once. Parse errors are ignored here:
// the strict decoder reports them with their own positions.
func scanPositions(file string, data []byte) *positions {
	ps := &positions{file: file, lines: map[string]int{}, kinds: map[string]unstable.Kind{}}
	counts := map[string]int{} // indexed array-table path -> elements seen
	var p unstable.Parser
	p.Reset(data)
	prefix := ""
	lineOf := func(n *unstable.Node) int {
		if n == nil || n.Raw.Length == 0 && n.Raw.Offset == 0 {
			return 0
		}
		return p.Shape(n.Raw).Start.Line
	}
	// resolve turns a dotted key into an indexed path: every segment that
	// names an array of tables refers to its latest element.
	resolve := func(keys []string, newArrayElem bool) string {
		path := ""
		for i, k := range keys {
			if path == "" {
				path = k
			} else {
				path += "." + k
			}
			if i == len(keys)-1 && newArrayElem {
				n := counts[path]
				counts[path] = n + 1
				path = fmt.Sprintf("%s[%d]", path, n)
				continue
			}
			if n, ok := counts[path]; ok {
				path = fmt.Sprintf("%s[%d]", path, n-1)
			}
		}
		return path
	}
	var walkKV func(base string, kv *unstable.Node)
	var walkValue func(path string, v *unstable.Node, line int)
	walkKV = func(base string, kv *unstable.Node) {
		var keys []string
		var first *unstable.Node
		it := kv.Key()
		for it.Next() {
			n := it.Node()
			if first == nil {
				first = n
			}
			keys = append(keys, string(n.Data))
		}
		path := strings.Join(keys, ".")
		if base != "" {
			path = base + "." + path
		}
		if l := lineOf(first); l > 0 {
			ps.lines[path] = l
		}
		walkValue(path, kv.Value(), lineOf(first))
	}
	walkValue = func(path string, v *unstable.Node, line int) {
		if v == nil {
			return
		}
		if _, seen := ps.kinds[path]; !seen {
			ps.order = append(ps.order, path)
		}
		ps.kinds[path] = v.Kind
		switch v.Kind {
		case unstable.InlineTable:
			c := v.Children()
			for c.Next() {
				walkKV(path, c.Node())
			}
		case unstable.Array:
			// An inline array of tables: route = [{ path = "/", ... }].
			// Scalars get a line each (errors name the bad upstream's
			// line), up to a bound that keeps a huge array cheap; their
			// kinds are not needed.
			c := v.Children()
			for i := 0; c.Next(); i++ {
				n := c.Node()
				nested := n.Kind == unstable.InlineTable || n.Kind == unstable.Array
				if !nested && i >= maxIndexedElems {
					continue
				}
				elem := fmt.Sprintf("%s[%d]", path, i)
				l := lineOf(n)
				if l == 0 {
					l = line
				}
				if l > 0 {
					if _, ok := ps.lines[elem]; !ok {
						ps.lines[elem] = l
					}
				}
				if nested {
					walkValue(elem, n, l)
				}
			}
		}
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var keys []string
			var first *unstable.Node
			it := e.Key()
			for it.Next() {
				n := it.Node()
				if first == nil {
					first = n
				}
				keys = append(keys, string(n.Data))
			}
			prefix = resolve(keys, e.Kind == unstable.ArrayTable)
			if l := lineOf(first); l > 0 {
				ps.lines[prefix] = l
			}
		case unstable.KeyValue:
			walkKV(prefix, e)
		}
	}
	return ps
}

// at returns the position of the most specific known key along path:
// "site[0].route[1].static.root" falls back to "site[0].route[1].static",
// then "site[0].route[1]", and so on.
func (ps *positions) at(path string) Position {
	if ps == nil {
		return Position{}
	}
	if l := lookupUp(ps.lines, path); l > 0 {
		return Position{File: ps.file, Line: l}
	}
	// A single table where an array of tables was expected ([site.route]
	// or [[site.route]] without a [[site]] decode as one-element arrays)
	// is indexed differently: compare without indices.
	if ps.plain == nil {
		ps.plain = map[string]int{}
		for k, l := range ps.lines {
			if pk := keyName(k); ps.plain[pk] == 0 || l < ps.plain[pk] {
				ps.plain[pk] = l
			}
		}
	}
	if l := lookupUp(ps.plain, keyName(path)); l > 0 {
		return Position{File: ps.file, Line: l}
	}
	// Only deeper keys are written ([site.route.cgi] alone implies the
	// route): the first line below the nearest ancestor that has any.
	for p := keyName(path); p != ""; {
		if l := firstUnder(ps.plain, p); l > 0 {
			return Position{File: ps.file, Line: l}
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Position{File: ps.file}
}

// lookupUp finds the line of path or of its nearest ancestor.
func lookupUp(lines map[string]int, path string) int {
	for p := path; p != ""; {
		if l, ok := lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// has reports whether the file sets key or anything below it.
func (ps *positions) has(key string) bool { return ps.first(key).Line > 0 }

// first is the position of the first line that sets key or anything below
// it ([server], or a dotted server.include = ...).
func (ps *positions) first(key string) Position {
	return Position{File: ps.file, Line: firstUnder(ps.lines, key)}
}

// firstUnder is the smallest line of key or of a key below it; 0 if none.
func firstUnder(lines map[string]int, key string) int {
	line := 0
	for k, l := range lines {
		if k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
			if line == 0 || l < line {
				line = l
			}
		}
	}
	return line
}
