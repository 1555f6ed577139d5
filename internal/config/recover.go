package config

import (
	"bytes"
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// The strict decoder stops at the first value of a wrong type, so a file
// with a type error and an unknown key and a bad value would take three
// rounds of `portico check` to clean up. This file finds every type error
// and unknown key in one pass over the scanned document, then decodes what
// is left, so that Load can also validate the rest: check reports every
// problem of a file in one run.

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

// segmentRE splits one segment of an indexed path: "route[2]" -> "route", "[2]".
var segmentRE = regexp.MustCompile(`^([^\[]*)((?:\[\d+\])*)$`)

// schemaProblems checks every value the scan saw against the schema: keys
// the schema does not have and values of a type the decoder would refuse.
// It returns the problems and the indexed paths of the offending values.
func schemaProblems(ps *positions) (Problems, []string) {
	var probs Problems
	var bad []string
	isBad := func(path string) bool {
		for _, b := range bad {
			if path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
				return true
			}
		}
		return false
	}
	for _, path := range ps.order {
		if isBad(path) {
			continue
		}
		t, known, at := schemaType(path)
		if known && t == nil {
			continue // left to the decoder
		}
		if !known {
			key := strings.Split(keyName(at), ".")
			probs = append(probs, Problem{ps.at(at), unknownKeyMsg(key)})
			bad = append(bad, at)
			continue
		}
		if want := kindMismatch(t, ps.kinds[path]); want != "" {
			probs = append(probs, Problem{ps.at(path), fmt.Sprintf("%s: want %s, not %s", keyName(path), want, kindName(ps.kinds[path]))})
			bad = append(bad, path)
		}
	}
	return probs, bad
}

// schemaType resolves an indexed key path to its Go type. When a segment
// is not in the schema, known is false and at is the path up to it.
func schemaType(path string) (t reflect.Type, known bool, at string) {
	t = reflect.TypeOf(Config{})
	prefix := ""
	for _, seg := range strings.Split(path, ".") {
		m := segmentRE.FindStringSubmatch(seg)
		if m == nil {
			return nil, true, path // a quoted key with odd characters: leave it to the decoder
		}
		name, indices := m[1], m[2]
		if prefix != "" {
			prefix += "."
		}
		prefix += name
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByKey(t, name)
			if !ok {
				f, ok = fieldByKeyFold(t, name)
			}
			if !ok {
				return nil, false, prefix
			}
			t = f.Type
		default:
			return nil, true, path // below a scalar: the type error is reported above
		}
		for range strings.Count(indices, "[") {
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if t.Kind() != reflect.Slice {
				return nil, true, path
			}
			t = t.Elem()
		}
		prefix += indices
	}
	return t, true, path
}

// fieldByKeyFold finds a field whose key matches when case is ignored:
// the decoder accepts it, and checkKeyCase reports the spelling.
func fieldByKeyFold(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name != "" && name != "-" && strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// kindMismatch says what t wants when a TOML value of kind k cannot be
// decoded into it, or "" when it can.
func kindMismatch(t reflect.Type, k unstable.Kind) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	isTable := k == unstable.InlineTable || k == unstable.Table || k == unstable.ArrayTable
	switch t {
	case durationType:
		if k != unstable.String {
			return "a duration string such as \"30s\""
		}
		return ""
	case sizeType:
		if k != unstable.String && k != unstable.Integer {
			return "a size such as \"64MB\" or a number of bytes"
		}
		return ""
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) && k == unstable.String {
		return "" // tls = "auto"
	}
	switch t.Kind() {
	case reflect.String:
		if k != unstable.String {
			return "a string"
		}
	case reflect.Bool:
		if k != unstable.Bool {
			return "true or false"
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if k != unstable.Integer {
			return "an integer"
		}
	case reflect.Float32, reflect.Float64:
		if k != unstable.Integer && k != unstable.Float {
			return "a number"
		}
	case reflect.Slice:
		if k != unstable.Array && !(isTable && t.Elem().Kind() == reflect.Struct) {
			if t.Elem().Kind() == reflect.String {
				return "an array of strings, e.g. [\"a\", \"b\"]"
			}
			return "an array of tables"
		}
	case reflect.Map:
		if !isTable {
			return "a table of strings, e.g. { NAME = \"value\" }"
		}
	case reflect.Struct:
		if !isTable && reflect.PointerTo(t).Implements(textUnmarshaler) {
			return "a table or a string"
		}
		if !isTable {
			return "a table"
		}
	}
	return ""
}

// unknownKeyMsg words an unknown key, with a hint when one helps.
func unknownKeyMsg(key []string) string {
	msg := fmt.Sprintf("unknown key %q", strings.Join(key, "."))
	if hint := suggestKey(key); hint != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", hint)
	} else if len(key) == 1 {
		if _, ok := fieldByKey(reflect.TypeOf(Server{}), key[0]); ok {
			msg += " (it belongs in the [server] table)"
		} else if _, ok := fieldByKey(reflect.TypeOf(Site{}), key[0]); ok {
			msg += " (it belongs in a [[site]] table)"
		}
	}
	return msg
}

// decodeWithout decodes data into a Config after removing the values at
// the bad paths, so what is left can be validated. ok is false when the
// rest still does not decode.
func decodeWithout(data []byte, bad []string) (*Config, bool) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, false
	}
	for _, p := range bad {
		removePath(doc, p)
	}
	clean, err := toml.Marshal(doc)
	if err != nil {
		return nil, false
	}
	var cfg Config
	dec := toml.NewDecoder(bytes.NewReader(clean))
	if err := dec.Decode(&cfg); err != nil {
		return nil, false
	}
	return &cfg, true
}

// removePath deletes the value at an indexed path from a generic document.
// An element of an array goes with its whole array, so the indices of the
// other elements (and the positions the scan gave them) stay right.
func removePath(doc map[string]any, path string) {
	segs := strings.Split(path, ".")
	var node any = doc
	for i, seg := range segs {
		m := segmentRE.FindStringSubmatch(seg)
		if m == nil {
			return
		}
		tbl, ok := node.(map[string]any)
		if !ok {
			return
		}
		name, indices := m[1], m[2]
		if i == len(segs)-1 {
			delete(tbl, name)
			return
		}
		node = tbl[name]
		for _, ix := range strings.Split(strings.Trim(indices, "[]"), "][") {
			if ix == "" {
				continue
			}
			n, _ := strconv.Atoi(ix)
			switch arr := node.(type) {
			case []any:
				if n >= len(arr) {
					return
				}
				node = arr[n]
			case []map[string]any:
				if n >= len(arr) {
					return
				}
				node = arr[n]
			default:
				return
			}
		}
	}
}

// quietLines are the lines whose validation problems would only repeat a
// decode problem: the lines of the keys that were dropped and of every
// table above them (a route whose static lost its root "has no root").
func quietLines(ps *positions, probs Problems) map[int]bool {
	lines := map[int]bool{}
	for _, p := range probs {
		lines[p.Pos.Line] = true
	}
	quiet := map[int]bool{}
	for path, l := range ps.lines {
		if !lines[l] {
			continue
		}
		for p := path; p != ""; {
			if pl, ok := ps.lines[p]; ok {
				quiet[pl] = true
			}
			i := strings.LastIndexAny(p, ".[")
			if i < 0 {
				break
			}
			p = p[:i]
		}
	}
	for l := range lines {
		quiet[l] = true
	}
	return quiet
}
