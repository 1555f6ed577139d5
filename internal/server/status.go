package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sort"
	"sync"
	"time"

	"portico/internal/cache"
	"portico/internal/cgi"
	"portico/internal/config"
	"portico/internal/proxy"
	"portico/internal/status"
	"portico/internal/wsgi"
)

// reloadLog remembers the outcome of reloads for the status page.
type reloadLog struct {
	mu         sync.Mutex
	last       *status.Reload
	ok, failed int64
}

// RecordReload notes the outcome of a reload attempt (err nil: it took
// effect). The caller records every attempt, including configs that did
// not load, which never reach Reload.
func (s *Server) RecordReload(err error) {
	r := &status.Reload{At: time.Now(), OK: err == nil}
	s.reloads.mu.Lock()
	defer s.reloads.mu.Unlock()
	if err != nil {
		r.Error = err.Error()
		s.reloads.failed++
	} else {
		s.reloads.ok++
	}
	s.reloads.last = r
}

// Status returns a snapshot of the running server for the status page.
// It reads counters only; it never blocks a request.
func (s *Server) Status() status.Snapshot {
	now := time.Now()
	snap := status.Snapshot{Now: now, Started: s.started, UptimeSeconds: int64(now.Sub(s.started) / time.Second)}
	s.reloads.mu.Lock()
	if s.reloads.last != nil {
		r := *s.reloads.last
		snap.Reload = &r
	}
	snap.Reloads = status.Counts{OK: s.reloads.ok, Failed: s.reloads.failed}
	s.reloads.mu.Unlock()

	t := s.tree.Load()
	if t == nil {
		return snap
	}
	snap.InFlight = t.inflight.Load()
	addrs := s.Addrs()
	bySite := map[string][]string{}
	tlsKey := map[string]bool{}
	for i := range t.cfg.Sites {
		sc := &t.cfg.Sites[i]
		for _, l := range sc.Listen {
			k := config.ListenerKey(l)
			bySite[k] = append(bySite[k], sc.Name)
			tlsKey[k] = tlsKey[k] || sc.TLS != nil
		}
	}
	for k, names := range bySite {
		addr := k
		if a, ok := addrs[k]; ok {
			addr = a.String()
		}
		snap.Listeners = append(snap.Listeners, status.Listener{Addr: addr, TLS: tlsKey[k], Sites: dedupe(names)})
	}
	sort.Slice(snap.Listeners, func(i, j int) bool { return snap.Listeners[i].Addr < snap.Listeners[j].Addr })

	for i := range t.cfg.Sites {
		sc := &t.cfg.Sites[i]
		live := t.liveSite(sc)
		ss := status.Site{Name: sc.Name, Hosts: append([]string{}, sc.Hosts...), Listen: sc.Listen, TLS: sc.TLS != nil}
		for j := range sc.Routes {
			rc := &sc.Routes[j]
			rs := routeStatus(rc)
			if live != nil {
				for _, rt := range live.routes {
					if rt.path == rc.Path {
						fillLive(&rs, rc, rt.handler)
						break
					}
				}
			}
			ss.Routes = append(ss.Routes, rs)
		}
		ss.Certificates = s.certificates(sc, live)
		snap.Sites = append(snap.Sites, ss)
	}
	return snap
}

// liveSite finds the built site of a config site.
func (t *Tree) liveSite(sc *config.Site) *site {
	for _, l := range sc.Listen {
		v := t.byListener[config.ListenerKey(l)]
		if v == nil {
			continue
		}
		if v.fallback != nil && v.fallback.name == sc.Name {
			return v.fallback
		}
		for _, st := range v.exact {
			if st.name == sc.Name {
				return st
			}
		}
		for _, w := range v.wildcards {
			if w.site.name == sc.Name {
				return w.site
			}
		}
	}
	return nil
}

// routeStatus is what the config says of a route.
func routeStatus(rc *config.Route) status.Route {
	rs := status.Route{Path: rc.Path}
	switch {
	case rc.Static != nil:
		rs.Kind, rs.Target = "static", rc.Static.Root
	case rc.CGI != nil:
		rs.Kind, rs.Target = "cgi", rc.CGI.Root
	case rc.Proxy != nil:
		rs.Kind = "proxy"
	case rc.WSGI != nil:
		rs.Kind, rs.Target = "wsgi", rc.WSGI.App
	case rc.Redirect != nil:
		rs.Kind, rs.Target = "redirect", rc.Redirect.To
	default:
		rs.Kind = "other"
	}
	return rs
}

// fillLive adds the counters of a route's live handlers, found by walking
// its wrappers (layers, cache, strip_prefix, a files-first fallback).
func fillLive(rs *status.Route, rc *config.Route, h http.Handler) {
	for i := 0; h != nil && i < 16; i++ {
		switch v := h.(type) {
		case *proxy.Handler:
			rs.Upstreams = v.Upstreams()
			return
		case *cgi.Handler:
			c := v.Status()
			rs.CGI = &c
			return
		case *wsgi.Pool:
			w := v.Status()
			rs.WSGI = &w
			return
		case *cache.Handler:
			st := v.Stats()
			c := status.Cache{Hits: st.Hits, Misses: st.Misses, Bypass: st.Bypass, Stored: st.Stored,
				Entries: st.Entries, Bytes: st.Bytes}
			if rc.Cache != nil {
				c.MaxSize = int64(rc.Cache.MaxSize)
			}
			if n := st.Hits + st.Misses; n > 0 {
				c.HitRatio = float64(st.Hits) / float64(n)
			}
			rs.Cache = &c
			h = v.Unwrap()
		case stripHandler:
			h = v.next
		case interface{ Fallback() http.Handler }:
			h = v.Fallback()
		case interface{ Unwrap() http.Handler }:
			h = v.Unwrap()
		default:
			return
		}
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// certificates lists what a TLS site serves: its certificate file, or the
// ACME certificate held for each of its hosts (none yet: not listed).
func (s *Server) certificates(sc *config.Site, live *site) []status.Certificate {
	if sc.TLS == nil || live == nil {
		return nil
	}
	leafOf := func(c *tls.Certificate) *x509.Certificate {
		if c == nil || len(c.Certificate) == 0 {
			return nil
		}
		if c.Leaf != nil {
			return c.Leaf
		}
		l, _ := x509.ParseCertificate(c.Certificate[0])
		return l
	}
	if !live.autoTLS {
		if l := leafOf(live.cert.get()); l != nil {
			return []status.Certificate{{Names: l.DNSNames, NotAfter: l.NotAfter}}
		}
		return nil
	}
	acme := s.acme.Load()
	if acme == nil {
		return nil
	}
	var out []status.Certificate
	for _, h := range sc.Hosts {
		c, err := acme.GetCertificate(&tls.ClientHelloInfo{ServerName: h})
		if l := leafOf(c); err == nil && l != nil {
			out = append(out, status.Certificate{Names: []string{h}, NotAfter: l.NotAfter, ACME: true})
		}
	}
	return out
}
