package cgi

import (
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
)

// maxSegments bounds the path segments walked to find a script.
const maxSegments = 32

// script is a request path resolved to a program to run.
type script struct {
	name     string // SCRIPT_NAME: Prefix + "/" + rel, URL-decoded
	rel      string // path under the root, slash-separated, no leading slash
	file     string // SCRIPT_FILENAME: absolute path of the script
	dir      string // the script's folder: the working directory
	pathInfo string // PATH_INFO, URL-decoded, "" or starting with "/"
	prog     string // the program exec'd: file, or an interpreter
	args     []string
	nph      bool
}

// resolve maps a request path to a script under the root, or to the status
// to answer (404 or 403). Its threat model: a request path is hostile. It
// must never name a file outside the root (through "..", encoded "%2e%2e"
// or "%2f", backslashes, NUL bytes, or symlinks that point out), never run
// anything but a regular file that is executable (or has an interpreter),
// and never serve a file's content: that is not resolve's business at all,
// so a non-runnable file is just a 403.
func (h *Handler) resolve(r *http.Request) (*script, int) {
	p := r.URL.Path
	rest, ok := strings.CutPrefix(p, h.prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, http.StatusNotFound
	}
	if rest == "" || rest == "/" {
		return nil, http.StatusForbidden // the folder itself: no listings
	}
	if !safePath(p) {
		return nil, http.StatusNotFound
	}
	// An encoded slash or backslash would change where the segments split:
	// refuse it, as Apache does by default (AllowEncodedSlashes Off).
	if r.URL.RawPath != "" {
		raw := strings.ToLower(r.URL.RawPath)
		if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
			return nil, http.StatusNotFound
		}
	}

	// Walk the segments until a file: that is the script, the rest is
	// PATH_INFO. Empty segments ("//") in the part before the script are
	// merged, as Apache and nginx do.
	rel := ""
	i := 1 // rest[0] == '/'
	for n := 0; ; n++ {
		if n >= maxSegments {
			return nil, http.StatusNotFound
		}
		for i < len(rest) && rest[i] == '/' {
			i++
		}
		if i >= len(rest) {
			return nil, http.StatusForbidden // ends on a folder
		}
		j := strings.IndexByte(rest[i:], '/')
		var seg string
		if j < 0 {
			seg, j = rest[i:], len(rest)
		} else {
			seg, j = rest[i:i+j], i+j
		}
		if seg[0] == '.' {
			return nil, http.StatusNotFound // dotfiles and dot folders are never run
		}
		if rel == "" {
			rel = seg
		} else {
			rel += "/" + seg
		}
		// os.Root.Stat follows symlinks but fails on any that leads out of
		// the root.
		fi, err := h.fsroot.Stat(rel)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil, http.StatusForbidden
			}
			return nil, http.StatusNotFound
		}
		if fi.IsDir() {
			i = j
			continue
		}
		if !fi.Mode().IsRegular() {
			return nil, http.StatusForbidden // fifo, socket, device
		}
		s := &script{
			rel:      rel,
			name:     h.prefix + "/" + rel,
			file:     filepath.Join(h.root, filepath.FromSlash(rel)),
			pathInfo: rest[j:],
			nph:      strings.HasPrefix(seg, "nph-"),
		}
		s.dir = filepath.Dir(s.file)
		if fi.Mode()&0o111 != 0 {
			s.prog = s.file
			s.args = []string{s.file}
		} else if interp, ok := h.interps[strings.ToLower(filepath.Ext(seg))]; ok {
			s.prog = interp
			s.args = []string{interp, s.file}
		} else {
			return nil, http.StatusForbidden // not runnable: its source is never sent
		}
		return s, 0
	}
}

// safePath reports whether a decoded URL path is free of the tricks that
// make one path mean two things: NUL bytes, backslashes, and "." or ".."
// segments anywhere (PATH_INFO included, so scripts that join it onto a
// folder are not handed a traversal).
func safePath(p string) bool {
	if strings.ContainsAny(p, "\x00\\") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
