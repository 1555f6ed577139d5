package fastcgi

import (
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"syscall"
)

// What a request path resolves to.
const (
	runScript     = iota // run target.file
	serveFile            // an existing file that is not a script: the static fallback
	redirectSlash        // a folder with an index, asked for without its "/"
	notFound
	forbidden
)

// target is the resolution of one request path.
type target struct {
	kind int
	// rel is the script's path relative to the root, slash-separated.
	rel string
	// name is SCRIPT_NAME and pathInfo PATH_INFO.
	name, pathInfo string
}

// resolve maps a decoded URL path to what the handler does with it, with
// nginx's habit
//
//	fastcgi_split_path_info ^(.+?\.php)(/.*)$;
//	try_files $uri $uri/ /index.php?$query_string;
//
// and these rules against running what must not run:
//
//   - the path is cut after the FIRST segment ending in split_path, and
//     that segment must name a regular file under the root: a missing
//     script is 404, never the front controller, and never a guess one
//     segment up, so "/upload/evil.jpg/x.php" runs nothing (php's
//     cgi.fix_pathinfo hole: it would run evil.jpg);
//   - files are looked up through os.Root: no "..", no symlink out of the
//     root; names starting with "." are refused (".env", ".git/");
//   - a file whose name ends in split_path with other letter case
//     ("X.PHP") is neither run nor served: its source must never leave.
func (h *Handler) resolve(urlPath string) target {
	rel, ok := strings.CutPrefix(urlPath, h.prefix)
	if !ok || (rel != "" && rel[0] != '/') || strings.ContainsAny(rel, "\x00\\") {
		return target{kind: notFound}
	}
	trimmed := strings.TrimPrefix(rel, "/")
	lastSeg := trimmed
	for start := 0; ; {
		end := strings.IndexByte(trimmed[start:], '/')
		if end < 0 {
			end = len(trimmed)
		} else {
			end += start
		}
		seg := trimmed[start:end]
		lastSeg = seg
		if seg == "" && end == len(trimmed) {
			break // a trailing slash
		}
		if seg == "" || seg[0] == '.' {
			return target{kind: notFound}
		}
		if len(seg) > len(h.split) && strings.HasSuffix(seg, h.split) {
			scriptRel := trimmed[:end]
			switch h.kindOf(scriptRel) {
			case 0:
			case ^fs.FileMode(0):
				return target{kind: forbidden}
			default:
				return target{kind: notFound}
			}
			return target{
				kind:     runScript,
				rel:      scriptRel,
				name:     h.prefix + "/" + scriptRel,
				pathInfo: rel[1+len(scriptRel):],
			}
		}
		if end == len(trimmed) {
			break
		}
		start = end + 1
	}
	name := trimmed
	if name == "" {
		name = "."
	}
	switch h.kindOf(strings.TrimSuffix(name, "/")) {
	case 0: // a regular file
		if hasFoldedSuffix(lastSeg, h.split) {
			return target{kind: notFound}
		}
		return target{kind: serveFile}
	case fs.ModeDir:
		dir := strings.TrimSuffix(trimmed, "/")
		index := h.index
		if dir != "" {
			index = dir + "/" + h.index
		}
		if h.kindOf(index) != 0 {
			return target{kind: serveFile} // a folder without a script index
		}
		if !strings.HasSuffix(rel, "/") {
			return target{kind: redirectSlash}
		}
		name := h.indexName
		if dir != "" {
			name = h.prefix + "/" + index
		}
		return target{kind: runScript, rel: index, name: name}
	case fs.ModeIrregular:
		return target{kind: notFound}
	case ^fs.FileMode(0):
		return target{kind: forbidden}
	}
	// No such file: the front controller, with the request's own
	// REQUEST_URI for the app to route on.
	if h.kindOf(h.index) != 0 {
		return target{kind: notFound}
	}
	return target{kind: runScript, rel: h.index, name: h.indexName}
}

// kindOf stats rel under the root: 0 for a regular file, fs.ModeDir for a
// folder, fs.ModeIrregular for anything else that exists, fs.ModeType for
// nothing there (missing, a path through a file, a symlink out of the
// root), ^0 for a permission error.
func (h *Handler) kindOf(rel string) fs.FileMode {
	fi, err := h.fsroot.Stat(rel)
	switch {
	case err == nil && fi.Mode().IsRegular():
		return 0
	case err == nil && fi.IsDir():
		return fs.ModeDir
	case err == nil:
		return fs.ModeIrregular
	case errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.ENOTDIR):
		return ^fs.FileMode(0)
	}
	return fs.ModeType
}

// hasFoldedSuffix reports whether name ends in suffix, letter case ignored.
func hasFoldedSuffix(name, suffix string) bool {
	return len(name) >= len(suffix) && strings.EqualFold(name[len(name)-len(suffix):], suffix)
}

// statusOf is the HTTP status of a target that runs nothing.
func statusOf(kind int) int {
	if kind == forbidden {
		return http.StatusForbidden
	}
	return http.StatusNotFound
}
