package server

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"portico/internal/config"
)

// rewriteRule is one built [[site.rewrite]].
type rewriteRule struct {
	from *regexp.Regexp
	to   string
}

// buildRewrites compiles a site's rewrites (config has validated them).
func buildRewrites(rs []config.Rewrite) ([]rewriteRule, error) {
	out := make([]rewriteRule, 0, len(rs))
	for _, r := range rs {
		re, err := regexp.Compile(r.From)
		if err != nil {
			return nil, err
		}
		out = append(out, rewriteRule{from: re, to: r.To})
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
		target := string(rw.from.ExpandString(nil, rw.to, path, m))
		newPath, query, hasQuery = strings.Cut(target, "?")
		return newPath, query, hasQuery, true
	}
	return "", "", false, false
}

// rewrite applies the site's rewrites to r before routing (nginx
// `rewrite ... last`): the first rule whose from matches the decoded path
// gives the new path (and, with a "?", the query, the client's appended
// after "&"). Handlers, upstreams and header rules see the new URL;
// r.RequestURI, and so the access log, keeps what the client sent. A
// target path with escapes is decoded as a request path is.
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
	if dec, err := url.PathUnescape(p); err == nil {
		u.Path, u.RawPath = dec, ""
		if u.EscapedPath() != p {
			u.RawPath = p // a non-default escaping, kept as written
		}
	} else {
		u.Path, u.RawPath = p, ""
	}
	if hasQuery {
		if r.URL.RawQuery != "" {
			q += "&" + r.URL.RawQuery
		}
		u.RawQuery = q
	}
	return r2
}
