// Package errorpage writes the error responses portico itself generates:
// a small friendly HTML page for browsers, plain text for everything else.
// Internal detail never goes into the page; callers log it instead.
package errorpage

import (
	"net/http"
	"strconv"
	"strings"
)

// Write sends an error response with the given status. The body is HTML when
// the request's Accept names text/html, plain text otherwise; HEAD gets no body.
func Write(w http.ResponseWriter, r *http.Request, status int) {
	WriteMessage(w, r, status, "")
}

// WriteMessage is Write with an extra sentence for the user (no secrets:
// it is shown to the client). An empty msg uses a default for the status.
func WriteMessage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := Default(status)
	if p == nil || msg != "" {
		p = NewPage(status, msg)
	}
	p.Write(w, r)
}

// Write sends the page on net/http: the body is HTML when the request's
// Accept names text/html, plain text otherwise; HEAD gets no body.
func (p *Page) Write(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for _, name := range deletedFields {
		h.Del(name)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	body := p.text
	if wantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		body = p.html
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func wantsHTML(r *http.Request) bool {
	if r == nil {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func defaultMessage(status int) string {
	switch status {
	case http.StatusNotFound:
		return "The page you asked for is not here."
	case http.StatusForbidden:
		return "You are not allowed to see this."
	case http.StatusMethodNotAllowed:
		return "This method is not allowed here."
	case http.StatusBadGateway:
		return "The server behind this one did not answer properly. Try again in a moment."
	case http.StatusServiceUnavailable:
		return "The server is busy. Try again in a moment."
	case http.StatusGatewayTimeout:
		return "The server behind this one took too long to answer."
	case http.StatusRequestEntityTooLarge:
		return "The request body is too large."
	case http.StatusRequestHeaderFieldsTooLarge:
		return "The request headers are too large."
	}
	if status >= 500 {
		return "Something went wrong on our side. The error has been logged."
	}
	return "The request could not be served."
}

var htmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")

func htmlEscape(s string) string { return htmlReplacer.Replace(s) }
