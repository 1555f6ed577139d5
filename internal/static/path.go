package static

import (
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// This file holds the security helpers that decide which request paths may
// reach the file system at all. Each is small, named after the threat it
// stops, and fuzzed (path_test.go). They are the first line of defence; the
// second is that every file is opened through an os.Root, so that even a
// path these helpers let through, or a symlink, cannot leave the root.

// cleanTraversalPath maps a decoded URL path to a slash-separated path
// relative to the static root, or reports ok=false when the path must not be
// served.
//
// Threat: path traversal and its disguises (Apache CVE-2021-41773/42013:
// "/.%2e/%2e%2e/etc/passwd"), Windows separators ("\..\"), NUL truncation,
// path parameters (";jsessionid", Tomcat-style ".;/"), overlong or otherwise
// invalid UTF-8, control bytes that could end up in a Location header, and
// dotfiles (".env", ".git/") that were never meant to be published.
//
// urlPath is the decoded path (r.URL.Path); the caller must separately
// reject encoded slashes with hasEncodedSeparator, because decoding turns
// "%2f" into a real "/". prefix is the route prefix without a trailing slash
// ("" for "/"); only the part after it is relative to the root, so a route
// at "/.well-known" still works while dotfiles below it stay hidden.
//
// On success rel is "." for the root itself, or "a/b" with no empty, "." or
// ".." segments (filepath.IsLocal holds), and dirSlash says whether the path
// ended in "/". Runs of slashes ("/a//b") are merged as nginx does. The
// common case allocates nothing: rel is a substring of urlPath.
func cleanTraversalPath(urlPath, prefix string, dotfiles bool) (rel string, dirSlash bool, ok bool) {
	if urlPath == "" || urlPath[0] != '/' || !strings.HasPrefix(urlPath, prefix) {
		return "", false, false
	}
	rest := urlPath[len(prefix):]
	if rest == "" {
		// The route prefix itself, e.g. "/docs" for a route at "/docs/":
		// the root, without its slash (the caller redirects).
		return ".", false, true
	}
	if rest[0] != '/' {
		return "", false, false
	}
	needUTF8, merge := false, false
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c < 0x20 || c == 0x7f || c == '\\' || c == ';':
			return "", false, false
		case c >= utf8.RuneSelf:
			needUTF8 = true
		case c == '/' && i+1 < len(rest):
			switch rest[i+1] {
			case '/':
				merge = true
			case '.':
				// A segment starting with a dot: ".", ".." or a dotfile.
				end := strings.IndexByte(rest[i+1:], '/')
				if end < 0 {
					end = len(rest) - i - 1
				}
				seg := rest[i+1 : i+1+end]
				if seg == "." || seg == ".." || !dotfiles {
					return "", false, false
				}
			}
		}
	}
	if needUTF8 && !utf8.ValidString(rest) {
		return "", false, false
	}
	if merge {
		rest = mergeSlashes(rest)
	}
	dirSlash = strings.HasSuffix(rest, "/")
	rel = strings.Trim(rest, "/")
	if rel == "" {
		return ".", dirSlash, true
	}
	// Defence in depth: whatever the scan above let through must be local.
	if !filepath.IsLocal(rel) {
		return "", false, false
	}
	return rel, dirSlash, true
}

// mergeSlashes turns runs of "/" into one.
func mergeSlashes(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '/' && i > 0 && s[i-1] == '/' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// hasEncodedSeparator reports whether an escaped URL path (r.URL.RawPath)
// contains an encoded path separator or NUL: "%2f", "%5c" or "%00" in any
// case.
//
// Threat: "%2f" decodes to "/" only after the server has split the path into
// segments, so "..%2f..%2fetc" or "a%2f..%2f.." would hide a ".." from
// segment checks in other software, and a file name can never contain "/"
// anyway. "%5c" is the Windows separator. Such paths are never served.
func hasEncodedSeparator(rawPath string) bool {
	for i := 0; i+2 < len(rawPath); i++ {
		if rawPath[i] != '%' {
			continue
		}
		a, b := rawPath[i+1], rawPath[i+2]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		switch {
		case a == '2' && b == 'f', a == '5' && b == 'c', a == '0' && b == '0':
			return true
		}
	}
	return false
}

// hiddenRel reports whether rel (slash-separated, relative to the root) is
// one of the hidden folders or inside one. hidden holds relative folder
// paths; "." hides everything.
//
// Threat: script source disclosure. A cgi-bin folder inside the static root
// must never be served as files: its scripts would be sent as text.
func hiddenRel(rel string, hidden []string) bool {
	for _, h := range hidden {
		if h == "." || rel == h || (len(rel) > len(h) && rel[len(h)] == '/' && strings.HasPrefix(rel, h)) {
			return true
		}
	}
	return false
}
