package proxy

// Request rewriting on the fast path: the header block sent upstream, by
// the rules of forward.go (the net/http path applies the same ones in
// rewrite).

import (
	"bytes"
	"net/textproto"

	"portico/internal/fastpath"
)

// Request header kinds.
const (
	rqOther = iota
	rqDrop  // hop-by-hop, Host, Content-Length, Proxy: never forwarded
	rqTe
	rqXFF
	rqXFP
	rqXFH
	rqForwarded
	rqVia
	rqUserAgent
	rqAccept
)

// requestKind sorts a request field. Hop-by-hop fields are forward.go's
// (hopByHop); Host and Content-Length are the fast path's own to send,
// and Proxy is dropped against httpoxy, as rewrite does.
func requestKind(name []byte) int {
	switch len(name) {
	case 2:
		if foldEq(name, "te") {
			return rqTe
		}
	case 3:
		if foldEq(name, "via") {
			return rqVia
		}
	case 4:
		if foldEq(name, "host") {
			return rqDrop
		}
	case 5:
		if foldEq(name, "proxy") {
			return rqDrop
		}
	case 6:
		if foldEq(name, "accept") {
			return rqAccept
		}
	case 9:
		if foldEq(name, "forwarded") {
			return rqForwarded
		}
	case 10:
		if foldEq(name, "user-agent") {
			return rqUserAgent
		}
	case 14:
		if foldEq(name, "content-length") {
			return rqDrop
		}
	case 15:
		if foldEq(name, "x-forwarded-for") {
			return rqXFF
		}
	case 16:
		if foldEq(name, "x-forwarded-host") {
			return rqXFH
		}
	case 17:
		if foldEq(name, "x-forwarded-proto") {
			return rqXFP
		}
	}
	if hopByHop(name) {
		return rqDrop
	}
	return rqOther
}

// maxVals bounds the repeated forwarding fields the fast path handles;
// more go to net/http.
const maxVals = 8

// fastRequestHeaders renders into st.hdr the header lines the net/http
// path sends upstream after Host: hop-by-hop removal (fields named in
// Connection too), the forwarding fields (forwardFields), TE: trailers,
// and the transport's handling of User-Agent and Content-Length. It
// returns false for anything it does not handle exactly.
func (h *Handler) fastRequestHeaders(st *fastState, req *fastpath.Request, raw []byte) bool {
	var connBuf [maxConnTokens]string
	conn, ok := appendConnTokens(connBuf[:0], req.Connection)
	if !ok {
		return false
	}
	var xff, xfp, xfh, fwd, via [maxVals][]byte
	var nxff, nxfp, nxfh, nfwd, nvia int
	te := false
	st.acceptHTML, st.hasAccept = false, false
	b := st.hdr[:0]
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 1 || raw[i-1] != '\r' {
			return false
		}
		line := raw[:i-1]
		raw = raw[i+1:]
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			return false
		}
		name, val := line[:c], textproto.TrimBytes(line[c+1:]) // the engine let no CR or LF in
		kind := requestKind(name)
		switch kind {
		case rqDrop:
			continue
		case rqTe:
			if teTrailers(val) {
				te = true
			}
			continue
		case rqXFF, rqXFP, rqXFH, rqForwarded:
			// Read from the incoming request (unaffected by Connection);
			// forwardFields decides what goes on.
			var n *int
			var vals *[maxVals][]byte
			switch kind {
			case rqXFF:
				n, vals = &nxff, &xff
			case rqXFP:
				n, vals = &nxfp, &xfp
			case rqXFH:
				n, vals = &nxfh, &xfh
			default:
				n, vals = &nfwd, &fwd
			}
			if *n == maxVals {
				return false
			}
			vals[*n] = val
			*n++
			continue
		}
		if connectionNamed(conn, name) {
			continue
		}
		switch kind {
		case rqVia:
			if nvia == maxVals {
				return false
			}
			via[nvia] = val
			nvia++
			continue
		case rqUserAgent:
			if len(val) == 0 {
				continue // the transport sends no empty User-Agent
			}
		case rqAccept:
			st.hasAccept = true
			st.acceptHTML = bytes.Contains(val, []byte("text/html"))
		}
		b = appendCanonical(b, name)
		b = append(b, ": "...)
		b = append(b, val...)
		b = append(b, "\r\n"...)
	}
	fin := forwardIn[[]byte]{
		peer:    req.RemoteAddr,
		trusted: h.trustedAddr(req.RemoteAddr),
		host:    req.Host,
		proto:   "1.1", // ServeFast takes HTTP/1.1 only
		xff:     xff[:nxff],
		xfp:     xfp[:nxfp],
		xfh:     xfh[:nxfh],
		fwd:     fwd[:nfwd],
		via:     via[:nvia],
	}
	fs := forwardFields(&fin)
	b = appendFields(b, fs[:])
	if te {
		b = append(b, "Te: trailers\r\n"...)
	}
	st.hdr = b
	return true
}
