package errorpage

import (
	"strings"

	"portico/internal/fastpath"
)

// WriteFast sends p on portico's fast path exactly as WritePage sends it on
// net/http, where the site's headers were set before: same status, fields
// and body. It returns false, having written nothing, when the answers
// could differ: the response's default (site) headers, canonical names,
// hold a field that
// WritePage deletes (Content-Length, Content-Encoding, ETag,
// Last-Modified); the caller then leaves the request to net/http.
func (p *Page) WriteFast(w *fastpath.ResponseWriter, req *fastpath.Request) bool {
	return p.WriteFastFields(w, req, nil, false)
}

// WriteFastFields is WriteFast for a handler that set header fields
// before the page on net/http (a file's Vary, Content-Range, Cache-Control
// for its 416): lines are those fields as header lines, none of them one
// the page deletes or sets (Content-Type, Content-Length, ...);
// cacheControl says whether they hold a Cache-Control, which the page
// then keeps.
func (p *Page) WriteFastFields(w *fastpath.ResponseWriter, req *fastpath.Request, lines []byte, cacheControl bool) bool {
	siteCacheControl := false
	for _, kv := range w.DefaultHeaders() { // canonical names
		switch kv[0] {
		case "Content-Length", "Content-Encoding", "Etag", "Last-Modified":
			return false // deletedFields
		case "Cache-Control":
			siteCacheControl = true
		}
	}
	html := strings.Contains(req.Accept, "text/html")
	w.WriteHeader(p.status)
	if html {
		w.AddHeaderLines(p.htmlHead)
	} else {
		w.AddHeaderLines(p.textHead)
	}
	w.AddHeaderLines(lines)
	if !cacheControl && !siteCacheControl {
		w.AddHeaderLines(noStore)
	}
	if req.Method == "HEAD" {
		return true // as WritePage: no body written, none counted
	}
	if html {
		w.Write(p.html)
	} else {
		w.Write(p.text)
	}
	return true
}

// deletedFields are the fields WritePage removes from what was set before.
var deletedFields = [...]string{"Content-Length", "Content-Encoding", "Etag", "Last-Modified"}

var noStore = []byte("Cache-Control: no-store\r\n")
