package server

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"portico/internal/config"
)

// rewriteRule is one built [[site.rewrite]].
type rewriteRule struct {
	from     *regexp.Regexp
	toPath   string // the target's path template
	toQuery  string // its query template, after "?"
	hasQuery bool
}

// buildRewrites compiles a site's rewrites (config has validated them).
func buildRewrites(rs []config.Rewrite) ([]rewriteRule, error) {
	out := make([]rewriteRule, 0, len(rs))
	for _, r := range rs {
		re, err := regexp.Compile(r.From)
		if err != nil {
			return nil, err
		}
		p, q, hasQuery := strings.Cut(r.To, "?")
		out = append(out, rewriteRule{from: re, toPath: p, toQuery: q, hasQuery: hasQuery})
	}
	return out, nil
}

// rewriteTarget returns the path and query path is rewritten to by the
// first matching rule, and whether one matched. The query is "" and
// hasQuery false when the target has no "?": the request keeps its own.
func (s *site) rewriteTarget(path string) (newPath, query string, hasQuery, ok bool) {
	for i := range s.rewrites {
		rw := &s.rewrites[i]
		m := rw.from.FindStringSubmatchIndex(path)
		if m == nil {
			continue
		}
		newPath = string(rw.from.ExpandString(nil, rw.toPath, path, m))
		if rw.hasQuery {
			query = expandQuery(rw.from, rw.toQuery, path, m)
		}
		return newPath, query, rw.hasQuery, true
	}
	return "", "", false, false
}

// rewrite applies the site's rewrites to r before routing (nginx
// `rewrite ... last`): the first rule whose from matches the decoded path
// gives the new path (and, with a "?", the query, the client's appended
// after "&"). Handlers, upstreams and header rules see the new URL;
// r.RequestURI, and so the access log, keeps what the client sent. The
// target is a decoded path, as the one from matched (a group holding
// "a b" gives "a b", sent upstream as "a%20b").
func (s *site) rewrite(r *http.Request) *http.Request {
	if len(s.rewrites) == 0 {
		return r
	}
	p, q, hasQuery, ok := s.rewriteTarget(r.URL.Path)
	if !ok {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	r2.URL = &u
	u.Path, u.RawPath = p, "" // decoded, as the path from matched
	if hasQuery {
		if r.URL.RawQuery != "" {
			q += "&" + r.URL.RawQuery
		}
		u.RawQuery = q
	}
	return r2
}

// groupRef finds $N, ${N} and ${name} in a template (regexp.Expand's
// syntax, less "$$" and bare names, which config refuses or leaves alone).
var groupRef = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)\}|([0-9]+))`)

// expandQuery expands a query template with the groups of match m of re
// in s, each query-escaped: a path segment "a&b=c" must not add a
// parameter.
func expandQuery(re *regexp.Regexp, tmpl, s string, m []int) string {
	return groupRef.ReplaceAllStringFunc(tmpl, func(ref string) string {
		sub := groupRef.FindStringSubmatch(ref)
		name := sub[1] + sub[2]
		i, err := strconv.Atoi(name)
		if err != nil {
			i = re.SubexpIndex(name)
		}
		if i < 0 || 2*i+1 >= len(m) || m[2*i] < 0 {
			return ""
		}
		return url.QueryEscape(s[m[2*i]:m[2*i+1]])
	})
}
