package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ACME configures automatic certificates ([server.acme]) for the sites
// with tls = "auto".
type ACME struct {
	// Email is the account contact the CA writes to about expiring
	// certificates and policy changes. Optional but recommended.
	Email string `toml:"email"`
	// Directory is the ACME directory URL of the CA (RFC 8555).
	// Default: Let's Encrypt production.
	Directory string `toml:"directory"`
	// CARoot is a PEM file of extra root certificates to trust when
	// talking to the CA (a private CA such as pebble or step-ca).
	CARoot string `toml:"ca_root"`
	// Storage holds accounts, certificates and locks: a folder (default
	// "certs" beside the config file, or portico's state folder in quick
	// mode), or "redis://host:port/db" so that several portico instances
	// share one certificate and one order per name.
	Storage string `toml:"storage"`
}

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// UnmarshalText accepts tls = "auto"; the table form { cert, key } is
// decoded field by field as usual.
func (t *TLS) UnmarshalText(b []byte) error {
	if string(b) != "auto" {
		return fmt.Errorf(`tls must be "auto" or a table { cert = "cert.pem", key = "key.pem" }, not %q`, b)
	}
	*t = TLS{Auto: true}
	return nil
}

// RedisStorage reports whether an ACME storage value names Redis.
func RedisStorage(s string) bool {
	return strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://")
}

// validateACME fills ACME defaults, resolves its paths against the main
// file's folder and checks the tls = "auto" sites: they need [server.acme]
// and host names the CA can validate over HTTP or TLS (no wildcards: those
// need DNS-01, which portico does not do).
func validateACME(cfg *Config, mainPS *positions, sources []*positions) Problems {
	var probs Problems
	add := func(ps *positions, path, format string, args ...any) {
		pos := Position{File: cfg.File}
		if ps != nil {
			pos = ps.at(path)
		}
		probs = append(probs, Problem{pos, fmt.Sprintf(format, args...)})
	}
	dir := "."
	if cfg.File != "" {
		dir = filepath.Dir(cfg.File)
	}
	if a := cfg.Server.ACME; a != nil {
		setStr(&a.Directory, DefaultACMEDirectory)
		if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
			add(mainPS, "server.acme.directory", "acme directory %q: want an https:// URL of an ACME directory", a.Directory)
		}
		if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " <>\r\n")) {
			add(mainPS, "server.acme.email", "acme email %q: want an address like ops@example.com", a.Email)
		}
		if a.CARoot != "" {
			a.CARoot = resolve(dir, a.CARoot)
			if _, err := os.Stat(a.CARoot); err != nil {
				add(mainPS, "server.acme.ca_root", "acme ca_root %s: %s", a.CARoot, unwrapPathError(err))
			}
		}
		switch {
		case a.Storage == "":
			a.Storage = resolve(dir, "certs")
		case RedisStorage(a.Storage):
			if _, err := url.Parse(a.Storage); err != nil {
				add(mainPS, "server.acme.storage", "acme storage %q: %v", a.Storage, err)
			}
		case strings.Contains(a.Storage, "://"):
			add(mainPS, "server.acme.storage", "acme storage %q: want a folder or redis://host:port/db", a.Storage)
		default:
			a.Storage = resolve(dir, a.Storage)
		}
	}
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		var ps *positions
		if i < len(sources) {
			ps = sources[i]
		}
		base := fmt.Sprintf("site[%d]", siteIndex(cfg, ps, i, sources))
		if s.TLS != nil && s.TLS.Auto {
			if cfg.Server.ACME == nil {
				add(ps, base+".tls", "site %q: tls = \"auto\" needs a [server.acme] table (at least an email)", s.Name)
			}
			if len(s.Hosts) == 0 {
				add(ps, base+".tls", "site %q: tls = \"auto\" needs hosts: the names to get certificates for", s.Name)
			}
			for k, h := range s.Hosts {
				if strings.HasPrefix(h, "*.") {
					add(ps, fmt.Sprintf("%s.hosts[%d]", base, k), "site %q: host %q: a wildcard certificate needs the DNS-01 challenge, which portico does not do; list the names, or use tls = { cert, key }", s.Name, h)
				} else if net.ParseIP(strings.Trim(h, "[]")) != nil || h == "localhost" {
					add(ps, fmt.Sprintf("%s.hosts[%d]", base, k), "site %q: host %q: a public CA issues certificates for domain names only", s.Name, h)
				}
			}
		}
		if s.RedirectHTTP && s.TLS == nil {
			add(ps, base+".redirect_http", "site %q: redirect_http needs tls", s.Name)
		}
		if len(s.HTTPListen) > 0 && !s.RedirectHTTP {
			add(ps, base+".http_listen", "site %q: http_listen is used by redirect_http only", s.Name)
		}
		if s.HTTP3 != nil && *s.HTTP3 && s.TLS == nil {
			add(ps, base+".http3", "site %q: http3 needs tls", s.Name)
		}
	}
	return probs
}

// siteIndex is the index of site i within its own file (the position
// index of an included file counts its own [[site]] tables from 0).
func siteIndex(cfg *Config, ps *positions, i int, sources []*positions) int {
	n := 0
	for j := 0; j < i && j < len(sources); j++ {
		if sources[j] == ps {
			n++
		}
	}
	return n
}

// addRedirectSites adds, for each site with redirect_http, a plain-HTTP
// site on its http_listen addresses for the same hosts that answers with
// a 308 to HTTPS. Being ordinary sites, they are checked, listed and
// served like any other (named "NAME (http)").
func addRedirectSites(cfg *Config, sources []*positions) []*positions {
	n := len(cfg.Sites)
	for i := 0; i < n; i++ {
		s := cfg.Sites[i]
		if !s.RedirectHTTP || s.TLS == nil {
			continue
		}
		listen := s.HTTPListen
		if len(listen) == 0 {
			listen = []string{":80"}
		}
		port := ""
		if len(s.Listen) > 0 {
			if _, p, err := net.SplitHostPort(s.Listen[0]); err == nil && p != "443" {
				if n, err := strconv.Atoi(p); err == nil && n > 0 {
					port = ":" + p
				}
			}
		}
		rs := Site{
			Name:   s.Name + " (http)",
			Listen: listen,
			Hosts:  s.Hosts,
			Source: s.Source,
			Routes: []Route{{Path: "/", Source: s.Source,
				Redirect: &Redirect{To: "https://{hostname}" + port + "{uri}", Status: 308}}},
		}
		applyRouteDefaults(&rs.Routes[0], &cfg.Server)
		cfg.Sites = append(cfg.Sites, rs)
		var ps *positions
		if i < len(sources) {
			ps = sources[i]
		}
		sources = append(sources, ps)
	}
	return sources
}
