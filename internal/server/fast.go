package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"portico/internal/config"
	"portico/internal/errorpage"
	"portico/internal/fastpath"
)

// fastListen puts portico's fast path (package fastpath) in front of a
// plain-HTTP listener: hot static hits are answered by the fast path, and
// every connection that sends anything else is handed to l.srv through the
// returned listener. Limits are the http.Server's, and write_timeout moves
// with progress on both paths: the fast path applies it itself (without a
// time.Now per write), and the caller wraps the returned listener in
// progressListener for net/http.
//
// The fast path's connections are not net/http's, so http.Server.Shutdown
// does not wait for them; closing the listener (which Shutdown and Close
// do) ends their idle connections at once, and a goroutine counted in s.wg
// waits for the busy ones (at most shutdown_timeout), so Server.Shutdown
// still returns only once they are gone.
func (s *Server) fastListen(key string, ln net.Listener, cfg config.Server) net.Listener {
	fl := fastpath.Listen(ln, &fastEntry{s: s, key: key}, fastpath.Options{
		ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
		WriteTimeout:      cfg.WriteTimeout.D(),
		IdleTimeout:       cfg.IdleTimeout.D(),
		MaxHeaderBytes:    int(cfg.MaxHeaderBytes),
		OnPanic: func(p any) {
			s.opts.Logger.Error("panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		},
	})
	timeout := cfg.ShutdownTimeout.D()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-fl.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = fl.Shutdown(ctx)
	}()
	return fl
}

// fastEntry is entry's counterpart on the fast path: it pins the live
// tree, finds the site and route exactly as vhost, site and dispatch do,
// and lets the route's handler answer if it can (today: static files).
// Whatever it declines goes to net/http, which then runs the whole normal
// way (entry -> vhost -> site -> route) for it, errors included.
type fastEntry struct {
	s   *Server
	key string
}

func (f *fastEntry) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	t := f.s.tree.Load()
	v := t.byListener[f.key]
	if v == nil {
		return false
	}
	if strings.HasPrefix(req.Path, acmeChallengePrefix) && f.s.acme.Load() != nil {
		return false // answered before routing, on net/http (tls.go)
	}
	st := v.lookup(req.Host)
	if mode := t.cfg.Server.RequestID; mode != config.RequestIDOff && mode != "" {
		incoming := ""
		if mode == config.RequestIDPass {
			incoming = rawHeaderValue(w.RawHeader(), "X-Request-Id")
		}
		req.RequestID = requestID(mode, incoming)
	}
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	start := req.Start
	// Read before a gate consumes Authorization (access.go).
	user, remote := t.fastClient(req, w)
	w.SetRecording(t.log != nil)
	siteName := ""
	var rt *route
	if st == nil {
		// vhost.ServeHTTP's answer, without its site headers.
		if !noSitePage.WriteFast(w, req) {
			return false
		}
	} else {
		var served bool
		if rt, served = st.serveFast(req, w); !served {
			return false
		}
		siteName = st.name
	}
	if t.log == nil && t.metrics == nil && (rt == nil || rt.metrics == nil) {
		// Nothing reads when the response ended: spare the clock read
		// (a 404 or a cached file takes a few microseconds, and the
		// engine counts the idle wait from the request's arrival).
		return true
	}
	now := w.Done()
	if t.log != nil {
		t.log.logFast(req, w, user, remote, siteName, start, now)
	}
	var sm *siteMetrics
	if st != nil {
		sm = st.metrics
	}
	t.metrics.observe(sm, siteName, w.Status(), now.Sub(start))
	if rt != nil {
		rt.metrics.observe(w.Status(), now.Sub(start))
	}
	return true
}

// ServeFast is site.ServeHTTP on the fast path: the same path check, the
// same route lookup, the site's headers, and the route's handler if it
// has a fast path; whatever it declines, ServeHTTP then answers.
func (s *site) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	_, served := s.serveFast(req, w)
	return served
}

// serveFast is ServeFast that also returns the route that answered (nil
// for the no-route 404), so the caller counts it without a second lookup.
func (s *site) serveFast(req *fastpath.Request, w *fastpath.ResponseWriter) (*route, bool) {
	req, ok := normalizeFast(req)
	if !ok {
		return nil, false // net/http answers the 400
	}
	if len(s.rewrites) > 0 {
		if _, _, _, ok := s.rewriteTarget(req.Path); ok {
			return nil, false // rewritten: net/http's path routes the new URL
		}
	}
	rt := s.route(req.Path)
	if rt == nil {
		// dispatch's 404 for a path no route takes, with the site's
		// headers.
		w.SetDefaultHeaders(s.headers)
		return nil, errorpage.Default(http.StatusNotFound).WriteFast(w, req)
	}
	if rt.maxBody < 0 || rt.forwardsFast && req.RequestID != "" {
		return nil, false
	}
	fh, ok := rt.handler.(fastpath.Handler)
	if !ok {
		return nil, false
	}
	w.SetDefaultHeaders(s.headers)
	return rt, fh.ServeFast(req, w)
}

// logFast writes the access-log line of a fast-path request: the same line
// log writes for the same request served by net/http (a test holds the two
// together).
func (l *accessLog) logFast(req *fastpath.Request, w *fastpath.ResponseWriter, user, remote, site string, start, now time.Time) {
	status, bytes := w.Status(), w.BytesWritten()
	l.write(&logLine{
		remoteAddr: remote, user: user, site: site, host: req.Host,
		method: req.Method, uri: req.URI, proto: req.Proto,
		referer: req.Referer, userAgent: req.UserAgent,
		status: status, bytes: bytes, start: start, now: now,
		requestID: req.RequestID, up: &w.Record,
	})
}

// basicAuthUser returns the user name of a Basic Authorization value, as
// http.Request.BasicAuth does.
func basicAuthUser(auth string) (string, bool) {
	const prefix = "Basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", false
	}
	c, err := base64.StdEncoding.DecodeString(auth[len(prefix):])
	if err != nil {
		return "", false
	}
	user, _, ok := strings.Cut(string(c), ":")
	return user, ok
}
