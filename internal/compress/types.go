package compress

import "strings"

// typeSet matches media types against patterns: "type/subtype" exactly,
// "type/*" any subtype, "type/*+suffix" a structured-syntax suffix.
type typeSet struct {
	exact    map[string]bool
	prefixes []string    // "text/"
	suffixes [][2]string // {"application/", "+json"}
}

func newTypeSet(patterns []string) typeSet {
	ts := typeSet{exact: map[string]bool{}}
	for _, p := range patterns {
		p = strings.ToLower(p)
		t, sub, _ := strings.Cut(p, "/")
		switch {
		case sub == "*":
			ts.prefixes = append(ts.prefixes, t+"/")
		case strings.HasPrefix(sub, "*+"):
			ts.suffixes = append(ts.suffixes, [2]string{t + "/", sub[1:]})
		default:
			ts.exact[p] = true
		}
	}
	return ts
}

// match reports whether a Content-Type value names a type of the set.
func (ts *typeSet) match(contentType string) bool {
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	if mt == "" {
		return false
	}
	for i := 0; i < len(mt); i++ {
		if c := mt[i]; 'A' <= c && c <= 'Z' {
			mt = strings.ToLower(mt)
			break
		}
	}
	if ts.exact[mt] {
		return true
	}
	for _, p := range ts.prefixes {
		if strings.HasPrefix(mt, p) {
			return true
		}
	}
	for _, s := range ts.suffixes {
		if strings.HasPrefix(mt, s[0]) && strings.HasSuffix(mt, s[1]) {
			return true
		}
	}
	return false
}
