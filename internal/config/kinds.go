package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// scalarKeys maps every key of the schema whose Go type is Duration or Size,
// written without array indices ("site.route.cgi.timeout"), to that type.
// The decoder would store a bare TOML integer into these int64 types as is,
// so `timeout = 30` would mean 30 nanoseconds; Load rejects that instead.
var scalarKeys = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		switch t {
		case durationType, sizeType:
			m[prefix] = t
			return
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			walk(key, f.Type)
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return m
}()

var (
	durationType = reflect.TypeOf(Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
	indexRE      = regexp.MustCompile(`\[\d+\]`)
)

// checkKinds reports durations and sizes written with a TOML type the
// decoder would misread or report without a line: a duration must be a
// string ("30s"), a size a string ("64MB") or a non-negative integer.
func checkKinds(ps *positions) Problems {
	var probs Problems
	for _, path := range ps.order {
		if strings.HasSuffix(path, "]") {
			continue // an array element: the array itself is checked
		}
		t, ok := scalarKeys[indexRE.ReplaceAllString(path, "")]
		if !ok {
			continue
		}
		kind := ps.kinds[path]
		var msg string
		switch {
		case kind == unstable.String:
			continue
		case t == durationType && kind == unstable.Integer:
			msg = "a duration needs a unit: write a string such as \"30s\" or \"5m\" (a bare number would be nanoseconds)"
		case t == durationType:
			msg = fmt.Sprintf("want a duration string such as \"30s\", not %s", kindName(kind))
		case t == sizeType && kind == unstable.Integer:
			continue // a byte count; negative values are caught by validate
		default:
			msg = fmt.Sprintf("want a size such as \"64MB\" or a number of bytes, not %s", kindName(kind))
		}
		probs = append(probs, Problem{ps.at(path), keyName(path) + ": " + msg})
	}
	return probs
}

// keyName writes an indexed key path the way the user wrote it.
func keyName(path string) string { return indexRE.ReplaceAllString(path, "") }

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable, unstable.Table, unstable.ArrayTable:
		return "a table"
	case unstable.DateTime, unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime:
		return "a date/time"
	}
	return "a " + k.String()
}

var mismatchRE = regexp.MustCompile(`^cannot decode TOML (.+?) into (?:struct field \S+ of type )?(\S+)$`)

// friendlyMismatch rewrites the decoder's type mismatch message, which names
// Go types, in the words of the config file.
func friendlyMismatch(msg string) string {
	m := mismatchRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	have := m[1]
	switch {
	case strings.HasPrefix(have, "inline table"), have == "table", have == "array table":
		have = "a table"
	case strings.HasPrefix(have, "a") || strings.HasPrefix(have, "i"):
		have = "an " + have
	default:
		have = "a " + have
	}
	want := m[2]
	switch {
	case want == "string":
		want = "a string"
	case want == "bool":
		want = "true or false"
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
		want = "an integer"
	case want == "[]string":
		want = "an array of strings, e.g. [\"a\", \"b\"]"
	case strings.HasPrefix(want, "[]"):
		want = "an array of tables"
	case strings.HasPrefix(want, "map["):
		want = "a table of strings, e.g. { NAME = \"value\" }"
	case want == "config.Duration":
		want = "a duration string such as \"30s\""
	case want == "config.Size":
		want = "a size such as \"64MB\""
	default:
		want = "a table"
	}
	return "want " + want + ", not " + have
}

// suggestKey proposes the schema key closest to an unknown key, for
// "did you mean" hints: key is the full dotted path as the decoder gives it.
func suggestKey(key []string) string {
	if len(key) == 0 {
		return ""
	}
	t := reflect.TypeOf(Config{})
	for _, seg := range key[:len(key)-1] {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		f, ok := fieldByKey(t, seg)
		if !ok {
			return ""
		}
		t = f.Type
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	bad := strings.ToLower(key[len(key)-1])
	best, bestDist := "", 3
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		d := editDistance(bad, name)
		switch {
		case strings.ReplaceAll(bad, "-", "_") == name:
			d = 0
		case len(bad) >= 4 && len(name) >= 4 && (strings.HasPrefix(name, bad) || strings.HasPrefix(bad, name)):
			d = min(d, 2)
		}
		if d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// fullKey repairs the key of an unknown-key error inside an inline table,
// which the decoder reports without the inline table's own name
// ("site.route.tiemout" for cgi = { tiemout = "5s" }): among the keys the
// scan saw on that line, it picks the one that ends the same way.
func fullKey(ps *positions, line int, key []string) []string {
	if ps == nil || len(key) == 0 {
		return key
	}
	want := strings.Join(key, ".")
	last := "." + key[len(key)-1]
	var found []string
	for _, p := range ps.order {
		if ps.lines[p] != line {
			continue
		}
		k := keyName(p)
		if k == want {
			return key
		}
		if strings.HasSuffix(k, last) && len(k) > len(want) {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		return key
	}
	return strings.Split(found[0], ".")
}

// checkKeyCase reports keys that match a schema key only when case is
// ignored. The decoder would accept `Proxy` for `proxy` (it falls back to a
// case-insensitive match), but TOML keys are case-sensitive and the schema
// is all lowercase: one spelling keeps configs greppable and positions
// exact.
func checkKeyCase(ps *positions) Problems {
	paths := make([]string, 0, len(ps.lines))
	for p := range ps.lines {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		if ps.lines[paths[i]] != ps.lines[paths[j]] {
			return ps.lines[paths[i]] < ps.lines[paths[j]]
		}
		return paths[i] < paths[j]
	})
	var probs Problems
	seen := map[string]bool{}
	for _, path := range paths {
		segs := strings.Split(keyName(path), ".")
		t := reflect.TypeOf(Config{})
		for i, seg := range segs {
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct {
				break // a map (headers, env) takes any key
			}
			if f, ok := fieldByKey(t, seg); ok {
				t = f.Type
				continue
			}
			var match reflect.Type
			for k := 0; k < t.NumField(); k++ {
				name, _, _ := strings.Cut(t.Field(k).Tag.Get("toml"), ",")
				if name != "" && name != "-" && strings.EqualFold(name, seg) {
					match = t.Field(k).Type
					bad := strings.Join(segs[:i+1], ".")
					if !seen[bad] {
						seen[bad] = true
						probs = append(probs, Problem{Position{ps.file, ps.lines[path]},
							fmt.Sprintf("unknown key %q: keys are case-sensitive, write %q", bad, name)})
					}
					break
				}
			}
			if match == nil {
				break // truly unknown: the decoder reports it
			}
			t = match
		}
	}
	return probs
}
