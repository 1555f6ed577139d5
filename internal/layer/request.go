package layer

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"portico/internal/clientip"
	"portico/internal/config"
)

// RequestLayer is a layer that also edits the request before the route's
// handler sees it (request header rules). On the fast path a request it
// would edit is declined: the fast path's handlers read the request as
// the client sent it, so net/http's path, where the edit happens, serves
// it.
type RequestLayer interface {
	Layer
	// EditsRequest reports whether EditRequest may change a request for
	// path.
	EditsRequest(path string) bool
	// EditRequest edits h, the header of r (a copy the layer may change).
	EditRequest(r Request, h http.Header)
}

func (h *chained) editsRequest(path string) bool {
	for _, l := range h.requests {
		if l.EditsRequest(path) {
			return true
		}
	}
	return false
}

// editRequest returns r with the request layers' edits, on a shallow copy
// with its own header map (the original stays as the client sent it, for
// the access log), or r itself when no layer edits it.
func (h *chained) editRequest(r *http.Request) *http.Request {
	if !h.editsRequest(r.URL.Path) {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = r.Header.Clone()
	view := httpRequest{r}
	for _, l := range h.requests {
		l.EditRequest(view, r2.Header)
	}
	return r2
}

// HeaderLayer is the Layer of a site's or route's header rules: response
// rules ([[site.route.headers]], [[site.header_rules]]) and request rules
// ([[site.route.request_headers]], [[site.request_headers]]).
type HeaderLayer struct {
	resp *HeaderRules
	req  *HeaderRules
}

var _ RequestLayer = (*HeaderLayer)(nil)

// NewHeaderLayer builds the layer of response and request rules; nil when
// both are empty.
func NewHeaderLayer(response, request []config.HeaderRule, clients *clientip.Resolver) *HeaderLayer {
	l := &HeaderLayer{resp: NewHeaderRules(response), req: NewHeaderRules(request)}
	if l.resp == nil && l.req == nil {
		return nil
	}
	for _, hr := range []*HeaderRules{l.resp, l.req} {
		if hr != nil {
			hr.clients = clients
		}
	}
	return l
}

func (l *HeaderLayer) EditsHeader(path string) bool {
	return l.resp != nil && l.resp.EditsHeader(path)
}

func (l *HeaderLayer) EditHeader(r Request, status int, h HeaderEditor) {
	if l.resp != nil {
		l.resp.EditHeader(r, status, h)
	}
}

func (l *HeaderLayer) EditsRequest(path string) bool {
	return l.req != nil && l.req.EditsHeader(path)
}

func (l *HeaderLayer) EditRequest(r Request, h http.Header) {
	if l.req != nil {
		l.req.edit(r, httpHeader(h), true)
	}
}

// expand replaces the placeholders of value ({client_ip}, {host},
// {request_id}, {method}, {path}, {scheme}) with r's values. Config has
// refused unknown ones; anything else in braces stays as written.
func expand(value string, r Request, clients *clientip.Resolver) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(value, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(value[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(value[:i])
		name := value[i : i+j+1]
		switch name {
		case "{client_ip}":
			if c, ok := r.(interface {
				Client(*clientip.Resolver) netip.Addr
			}); ok {
				if a := c.Client(clients); a.IsValid() {
					b.WriteString(a.String())
					break
				}
			}
			b.WriteString(clientIP(r.RemoteAddr()))
		case "{host}":
			b.WriteString(r.Host())
		case "{request_id}":
			b.WriteString(r.RequestID())
		case "{method}":
			b.WriteString(r.Method())
		case "{path}":
			b.WriteString(r.Path())
		case "{scheme}":
			b.WriteString(r.Scheme())
		default:
			b.WriteString(name)
		}
		value = value[i+j+1:]
	}
	b.WriteString(value)
	return stripCtl(b.String())
}

// clientIP is the address part of "ip:port" ("[::1]:80" -> "::1").
func clientIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// stripCtl drops control characters a placeholder could carry (a Host or
// path with a line break must not split a header field).
func stripCtl(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}
