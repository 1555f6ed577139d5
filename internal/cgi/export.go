package cgi

import (
	"bufio"
	"net"
	"net/http"
	"strings"

	"portico/internal/clientip"
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

// Endpoints are the connection meta-variables of a request (RFC 3875
// sections 4.1.8-4.1.15): where it arrived and who sent it.
type Endpoints struct {
	// ServerName is the Host header's name (no port), else the local IP.
	ServerName string
	// ServerAddr and ServerPort are the address and port the request
	// actually arrived on, never the port named in Host (a client must not
	// choose what a script believes its port is); the scheme's default
	// port when the handler runs without a listener.
	ServerAddr, ServerPort string
	// RemoteAddr and RemotePort are the client's: the peer, or the client
	// behind trusted proxies (then RemotePort is "").
	RemoteAddr, RemotePort string
}

// EndpointsOf computes the Endpoints of r with the client address rules
// of clients (nil: the peer).
func EndpointsOf(r *http.Request, clients *clientip.Resolver) Endpoints {
	local := ""
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a.String()
	}
	return EndpointsFrom(r.RemoteAddr, r.Header["X-Forwarded-For"], local, r.Host, r.TLS != nil, clients)
}

// EndpointsFrom is EndpointsOf from the parts of a request, for an engine
// without an *http.Request (portico's fast path): the peer's "ip:port",
// the X-Forwarded-For values, the local "ip:port" the request arrived on
// ("" if unknown), the Host, and whether it came over TLS. The strings
// returned are substrings of those given, or a client address behind
// trusted proxies.
func EndpointsFrom(remoteAddr string, xff []string, local, host string, isTLS bool, clients *clientip.Resolver) Endpoints {
	var e Endpoints
	e.RemoteAddr, e.RemotePort = splitHostPort(remoteAddr)
	if a, fromPeer := clients.Client(remoteAddr, xff); !fromPeer {
		e.RemoteAddr, e.RemotePort = a.String(), "" // the client behind trusted proxies
	}
	if local != "" {
		e.ServerAddr, e.ServerPort = splitHostPort(local)
	}
	if e.ServerPort == "" {
		e.ServerPort = "80"
		if isTLS {
			e.ServerPort = "443"
		}
	}
	e.ServerName = host
	// Only a Host with a port can split (and a failed split allocates
	// its error): "name", "[::1]" keep their name.
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') {
		if host, _, err := net.SplitHostPort(e.ServerName); err == nil {
			e.ServerName = host
		}
	}
	e.ServerName = strings.TrimSuffix(strings.TrimPrefix(e.ServerName, "["), "]")
	if e.ServerName == "" {
		e.ServerName = e.ServerAddr
	}
	return e
}
