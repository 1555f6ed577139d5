package server

import (
	"net/http"

	"portico/internal/fastpath"
	"portico/internal/reqpath"
)

// This file applies package reqpath's rule to the requests of both
// engines, before rewrites and routing: the route, its layers, its
// handler and an upstream behind it all see the normalised path. The
// request target as the client sent it stays in http.Request.RequestURI
// (and the fast path's original Request.URI): the access log and the
// REQUEST_URI of CGI, FastCGI and WSGI show it, as nginx's $request_uri.

// normalizeRequest returns r with its path normalised (r itself when the
// path needs no change), or ok=false when the path is refused (400).
// "OPTIONS *" passes as it is; no route matches it.
func normalizeRequest(r *http.Request) (*http.Request, bool) {
	if r.URL.Path == "*" {
		return r, true
	}
	esc := r.URL.EscapedPath()
	n, err := reqpath.Normalize(esc)
	if err != nil {
		return nil, false
	}
	if n == esc {
		return r, true
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	r2.URL = &u
	u.Path, u.RawPath = reqpath.Decode(n), n
	return r2, true
}

// normalizeFast is normalizeRequest on the fast path. A changed path gets
// a copy of req whose RawPath, Path and URI (the target a proxy relays)
// are the normalised ones; the caller's req keeps what the client sent,
// for the access log.
func normalizeFast(req *fastpath.Request) (*fastpath.Request, bool) {
	n, err := reqpath.Normalize(req.RawPath)
	if err != nil {
		return nil, false
	}
	if n == req.RawPath {
		return req, true
	}
	r2 := *req
	r2.RawPath, r2.Path = n, reqpath.Decode(n)
	r2.URI = n + req.URI[len(req.RawPath):] // RawPath is URI's start; the query follows
	return &r2, true
}
