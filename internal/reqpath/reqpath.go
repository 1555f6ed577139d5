// Package reqpath normalises request paths before routing: the one rule
// both of portico's engines (net/http and the fast path) apply, so that a
// route, its handler and an upstream all see the same path.
//
// The rule is nginx's (and RFC 3986 section 5.2.4's) with merge_slashes
// on, as nginx has it by default:
//
//   - "." segments are removed, and a ".." segment removes the segment
//     before it: "/a/./b/../c" is "/a/c". A path ending in a dot segment
//     keeps its trailing slash ("/a/b/.." is "/a/").
//   - Runs of slashes are merged: "//a///b" is "/a/b".
//   - A path that climbs above the root ("/..", "/a/../..") is refused,
//     as nginx answers it 400 (RFC 3986 would clamp it at the root).
//   - A dot may be written "%2e" or "%2E": "/%2e%2e/" is a ".." segment,
//     as nginx decodes escapes before it merges dot segments.
//
// Where portico departs from nginx, it refuses rather than guesses, so
// that no later reader of the path (a handler, a file system, an app
// behind the proxy) can find a dot segment portico did not see:
//
//   - An encoded slash ("%2f") or backslash ("%5c") never becomes a
//     separator here (nginx decodes "%2f" into one): the segment keeps its
//     escape. But a segment that would hold a "." or ".." piece if slashes,
//     backslashes, encoded or not, were separators ("..%2f", "a%5c..",
//     "..\x") is refused; so is one that is a dot segment before a ";"
//     ("..;", Tomcat's path parameters).
//   - A NUL byte, encoded or not, is refused, and so is a malformed escape.
//
// Segments that stay keep the client's escapes byte for byte, and a path
// that needs no change is returned as it is (no allocation).
package reqpath

import (
	"errors"
	"net/url"
	"strings"
)

// Why a path is refused. Callers answer all of them 400.
var (
	ErrNotAbsolute = errors.New("the path does not start with /")
	ErrEscape      = errors.New("the path has a malformed %-escape")
	ErrNUL         = errors.New("the path holds a NUL byte")
	ErrAboveRoot   = errors.New("the path climbs above the root")
	ErrHiddenDot   = errors.New("a segment hides a dot segment behind a slash, backslash or ';' that is not a separator")
)

// Normalize returns the normalised form of p, an escaped request path
// (the path part of the request target, as received), or the reason it
// is refused. The result is escaped too: decode it with Decode.
func Normalize(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", ErrNotAbsolute
	}
	if plain(p) {
		return p, nil
	}
	// The first pass checks every segment and says whether anything
	// changes; most paths that get here (a "%20", a "/.well-known") keep
	// every segment, and are returned without building anything.
	change := false
	rest := p[1:]
	for {
		seg, more := cutSegment(rest)
		k, err := classify(seg)
		if err != nil {
			return "", err
		}
		if k != kindName && (k != kindEmpty || more) {
			change = true // a dot segment, or "//"
		}
		if !more {
			break
		}
		rest = rest[len(seg)+1:]
	}
	if !change {
		return p, nil
	}
	return rebuild(p)
}

// Decode decodes the escapes of a path Normalize returned (it has
// checked them, so this cannot fail).
func Decode(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	d, err := url.PathUnescape(p)
	if err != nil {
		return p // unreachable for Normalize's results
	}
	return d
}

// plain reports whether p certainly needs no change: no escape, no
// backslash, no NUL, and no "//" or segment starting with a dot.
func plain(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%', '\\', 0:
			return false
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return false
			}
		}
	}
	return true
}

// cutSegment returns the segment at the start of s (up to the next '/')
// and whether another follows.
func cutSegment(s string) (seg string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], true
	}
	return s, false
}

// rebuild applies the rule to p, whose segments classify has accepted.
func rebuild(p string) (string, error) {
	var stack []string
	trailing := false
	rest := p[1:]
	for {
		seg, more := cutSegment(rest)
		k, _ := classify(seg)
		trailing = k != kindName
		switch k {
		case kindDotDot:
			if len(stack) == 0 {
				return "", ErrAboveRoot
			}
			stack = stack[:len(stack)-1]
		case kindName:
			stack = append(stack, seg)
		}
		if !more {
			break
		}
		rest = rest[len(seg)+1:]
	}
	var b strings.Builder
	b.Grow(len(p))
	for _, seg := range stack {
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if trailing || len(stack) == 0 {
		b.WriteByte('/')
	}
	return b.String(), nil
}

type kind int

const (
	kindName   kind = iota // a segment that stays
	kindEmpty              // "" (between two slashes, or after the last)
	kindDot                // "." or "%2e"
	kindDotDot             // "..", ".%2e", "%2e%2e", ...
)

// classify says what a segment is, decoding its escapes as it goes. It
// refuses malformed escapes, NUL, and dot pieces hidden behind a
// separator that is not one here (see the package comment).
func classify(seg string) (kind, error) {
	if seg == "" {
		return kindEmpty, nil
	}
	var (
		n        = 0     // length of the current piece's head (before ';')
		dots     = true  // the head is all dots so far
		inParams = false // past a ';' in the current piece
		pieces   = 1
	)
	dotPiece := func() bool { return dots && (n == 1 || n == 2) }
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return 0, ErrEscape
			}
			c = unhex(seg[i+1])<<4 | unhex(seg[i+2])
			i += 2
		}
		switch {
		case c == 0:
			return 0, ErrNUL
		case c == '/' || c == '\\':
			if dotPiece() {
				return 0, ErrHiddenDot
			}
			n, dots, inParams = 0, true, false
			pieces++
		case c == ';':
			inParams = true
		case !inParams:
			n++
			dots = dots && c == '.'
		}
	}
	if !dotPiece() {
		return kindName, nil
	}
	if pieces > 1 || inParams {
		return 0, ErrHiddenDot
	}
	if n == 1 {
		return kindDot, nil
	}
	return kindDotDot, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
