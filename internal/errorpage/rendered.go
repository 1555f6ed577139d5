package errorpage

import (
	"net/http"
	"strconv"
)

// Page is one error answer rendered once: its HTML and plain-text bodies
// and, for each, the header lines the fast path sends (Content-Type,
// Content-Length, X-Content-Type-Options; Cache-Control is decided per
// response, since a site header may replace it). Both engines send the
// same bytes. A Page is immutable.
type Page struct {
	status             int
	html, text         []byte
	htmlHead, textHead []byte
}

// NewPage renders the page of status with the sentence msg for the user
// ("" for the status's default), once: for a message a server sends
// often (its "no site" 404), build it when the configuration is loaded.
func NewPage(status int, msg string) *Page {
	if msg == "" {
		msg = defaultMessage(status)
	}
	p := &Page{
		status: status,
		html:   []byte(htmlBody(status, msg)),
		text:   []byte(textBody(status)),
	}
	p.htmlHead = headLines("text/html; charset=utf-8", len(p.html))
	p.textHead = headLines("text/plain; charset=utf-8", len(p.text))
	return p
}

// Status returns the page's status code.
func (p *Page) Status() int { return p.status }

// defaultPages holds the default pages of every 4xx and 5xx status with a
// name, indexed by status-400. Built at package init and never written
// again.
var defaultPages = renderDefaults()

func renderDefaults() *[200]*Page {
	var p [200]*Page
	for status := 400; status < 600; status++ {
		if http.StatusText(status) != "" {
			p[status-400] = NewPage(status, "")
		}
	}
	return &p
}

// Default returns the default page of status (the one Write sends), nil
// for a status outside 400-599 or without a name.
func Default(status int) *Page {
	if status < 400 || status >= 600 {
		return nil
	}
	return defaultPages[status-400]
}

func headLines(contentType string, n int) []byte {
	return []byte("Content-Type: " + contentType + "\r\nContent-Length: " + strconv.Itoa(n) +
		"\r\nX-Content-Type-Options: nosniff\r\n")
}

func statusText(status int) string {
	if text := http.StatusText(status); text != "" {
		return text
	}
	return "Error"
}

func htmlBody(status int, msg string) string {
	text := statusText(status)
	code := strconv.Itoa(status)
	return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" +
		"<title>" + code + " " + text + "</title>" +
		"<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:10vh auto;padding:0 1em;color:#222}" +
		"h1{font-size:1.6em;margin:0 0 .3em}p{color:#555}small{color:#888}</style></head>" +
		"<body><h1>" + code + " " + text + "</h1><p>" + htmlEscape(msg) + "</p><small>portico</small></body></html>\n"
}

func textBody(status int) string {
	return strconv.Itoa(status) + " " + statusText(status) + "\n"
}
