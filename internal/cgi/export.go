package cgi

import (
	"bufio"
	"net/http"
)

// This file exports the CGI rules that a FastCGI responder shares with a
// CGI script (RFC 3875 meta-variables and response header block), so that
// internal/fastcgi follows the very same rules instead of a copy of them.

// ResponseHeader is the parsed header block of a CGI or FastCGI response.
type ResponseHeader struct {
	// Status is the code of a Status field, 0 when none was given.
	Status int
	// Location is the value of the Location field, "" when absent.
	Location string
	// HasType tells whether a Content-Type field was given.
	HasType bool
	// Header holds every field to relay to the client, in canonical form,
	// hop-by-hop fields and the Status field removed.
	Header http.Header
}

// ErrIncomplete is returned by ParseResponseHeader when the output ended
// before the blank line that ends the header block.
var ErrIncomplete = errIncomplete

// ParseResponseHeader reads a (non-NPH) CGI response header block from br
// with the rules of the CGI handler: lines ended by LF or CRLF up to an
// empty line, at most 64 KiB, strict about field syntax, and one of
// Status, Content-Type or Location required. What is left in br is the
// body. A malformed block is an error whose text is for the error log.
func ParseResponseHeader(br *bufio.Reader) (*ResponseHeader, error) {
	resp, err := parseHeader(br, false)
	if err != nil {
		return nil, err
	}
	return &ResponseHeader{Status: resp.status, Location: resp.location, HasType: resp.hasType, Header: resp.header}, nil
}

// HeaderEnvName maps a request header name to its HTTP_* meta-variable, or
// reports false for a header that must not become one: Proxy (httpoxy),
// names with "_" or other bytes but letters, digits and "-" (header
// aliasing), Content-Type, Content-Length and Host.
func HeaderEnvName(name string) (string, bool) { return headerEnvName(name) }
