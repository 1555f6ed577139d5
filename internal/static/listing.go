package static

import (
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// listItem is one row of a directory listing.
type listItem struct {
	name    string
	dir     bool
	size    int64
	modTime time.Time
}

// serveListing answers a folder request with an HTML listing (cfg.Browse).
// Dotfiles (unless allowed), hidden folders, names that could not be
// requested back, and symlinks that leave the root are left out.
func (h *Handler) serveListing(w http.ResponseWriter, r *http.Request, rel string, n *node) {
	items, err := h.readDir(rel)
	if err != nil {
		h.fail(w, r, classify(err))
		return
	}
	urlPath := h.prefix + "/"
	if rel != "." {
		urlPath += rel + "/"
	}
	body := renderListing(urlPath, rel != ".", items)
	hdr := w.Header()
	hdr["Content-Type"] = hvHTML
	hdr["Cache-Control"] = hvNoCache
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// readDir lists a folder inside the root, sorted folders first, then by
// name.
func (h *Handler) readDir(rel string) ([]listItem, error) {
	d, err := h.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	des, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	items := make([]listItem, 0, len(des))
	for _, de := range des {
		name := de.Name()
		child := name
		if rel != "." {
			child = rel + "/" + name
		}
		// Only names that cleanTraversalPath would let back in are listed.
		if _, _, ok := cleanTraversalPath("/"+name, "", h.dotfiles); !ok || hiddenRel(child, h.hiddenRel) {
			continue
		}
		var fi fs.FileInfo
		if de.Type()&fs.ModeSymlink != 0 {
			fi, err = h.root.Stat(child) // fails for links leaving the root
		} else {
			fi, err = de.Info()
		}
		if err != nil || !(fi.IsDir() || fi.Mode().IsRegular()) {
			continue
		}
		if len(h.hiddenReal) > 0 && h.resolvesIntoHidden(child) {
			continue
		}
		items = append(items, listItem{name: name, dir: fi.IsDir(), size: fi.Size(), modTime: fi.ModTime()})
	}
	slices.SortFunc(items, func(a, b listItem) int {
		if a.dir != b.dir {
			if a.dir {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return items, nil
}

// renderListing writes the listing page of urlPath (decoded, with slashes).
func renderListing(urlPath string, parent bool, items []listItem) []byte {
	var b strings.Builder
	title := htmlEscape(urlPath)
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<title>Index of " + title + "</title>\n")
	b.WriteString("<style>body{font:16px/1.5 system-ui,sans-serif;max-width:50em;margin:2em auto;padding:0 1em;color:#222}" +
		"table{border-collapse:collapse;width:100%}td{padding:.3em .5em;border-bottom:1px solid #eee}" +
		"td.n{word-break:break-all}td.s,td.d{white-space:nowrap;color:#666;text-align:right}" +
		"a{text-decoration:none}@media(max-width:30em){td.d{display:none}}</style>\n")
	b.WriteString("</head><body>\n<h1>Index of " + title + "</h1>\n<table>\n")
	if parent {
		b.WriteString("<tr><td class=\"n\"><a href=\"../\">../</a></td><td class=\"s\"></td><td class=\"d\"></td></tr>\n")
	}
	for _, it := range items {
		name, href, size := it.name, "./"+urlPathEscape(it.name), formatSize(it.size)
		if it.dir {
			name += "/"
			href += "/"
			size = "-"
		}
		b.WriteString("<tr><td class=\"n\"><a href=\"" + htmlEscape(href) + "\">" + htmlEscape(name) + "</a></td>")
		b.WriteString("<td class=\"s\">" + size + "</td>")
		b.WriteString("<td class=\"d\">" + it.modTime.UTC().Format("2006-01-02 15:04") + "</td></tr>\n")
	}
	b.WriteString("</table>\n</body></html>\n")
	return []byte(b.String())
}

// formatSize writes a byte count for people: "512 B", "1.5 KiB", "12 MiB".
func formatSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[u]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " " + units[u]
}

// urlPathEscape escapes one path segment (a file name) for an href.
func urlPathEscape(s string) string { return url.PathEscape(s) }
