package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Defaults of the [server] table. docs/config.md quotes them.
const (
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
	DefaultMaxBodySize       = 100 << 20
)

// ApplyDefaults fills every unset field with its default. It is the one
// place defaults live; handlers may rely on it.
func ApplyDefaults(cfg *Config) {
	s := &cfg.Server
	setDur(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDur(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&s.ReadTimeout, DefaultReadTimeout)
	setDur(&s.WriteTimeout, DefaultWriteTimeout)
	setDur(&s.IdleTimeout, DefaultIdleTimeout)
	setStr(&s.AccessLog, "stdout")
	setStr(&s.LogFormat, "combined")
	setStr(&s.ErrorLog, "stderr")
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if s.MaxBodySize == 0 {
		s.MaxBodySize = DefaultMaxBodySize
	}
	// Names given in the file are kept (a duplicate is an error);
	// default names are made unique, so that an http and an https site
	// for one host need no names.
	used := map[string]bool{}
	for _, site := range cfg.Sites {
		used[site.Name] = true
	}
	for i := range cfg.Sites {
		site := &cfg.Sites[i]
		for k, h := range site.Hosts {
			site.Hosts[k] = strings.TrimSuffix(strings.ToLower(h), ".")
		}
		if site.Name == "" {
			base := "default"
			if len(site.Hosts) > 0 {
				base = site.Hosts[0]
			} else if i > 0 {
				base = fmt.Sprintf("site%d", i+1)
			}
			site.Name = base
			for n := 2; used[site.Name]; n++ {
				site.Name = fmt.Sprintf("%s-%d", base, n)
			}
			used[site.Name] = true
		}
		if len(site.Listen) == 0 {
			site.Listen = []string{":8080"}
		}
		for j := range site.Routes {
			applyRouteDefaults(&site.Routes[j], s)
		}
	}
	hideCGIRoots(cfg)
}

// hideCGIRoots tells every static route about the cgi roots that lie inside
// its root, so a script's source can never be served as a file. All sites'
// cgi roots count: another site's cgi-bin under this site's root is as
// secret as this site's own.
func hideCGIRoots(cfg *Config) {
	var cgiRoots []string
	for i := range cfg.Sites {
		for _, r := range cfg.Sites[i].Routes {
			if r.CGI != nil && r.CGI.Root != "" {
				// Absolute, so a relative root (quick mode) compares
				// with an absolute one.
				if abs, err := filepath.Abs(r.CGI.Root); err == nil {
					cgiRoots = append(cgiRoots, abs)
				}
			}
		}
	}
	for i := range cfg.Sites {
		for j := range cfg.Sites[i].Routes {
			st := cfg.Sites[i].Routes[j].Static
			if st == nil {
				continue
			}
			st.Hide = nil
			root, err := filepath.Abs(st.Root)
			if err != nil || st.Root == "" {
				continue
			}
			for _, c := range cgiRoots {
				if slices.Contains(st.Hide, c) {
					continue
				}
				if rel, err := filepath.Rel(root, c); err == nil && filepath.IsLocal(rel) {
					st.Hide = append(st.Hide, c)
				}
			}
		}
	}
}

func applyRouteDefaults(r *Route, s *Server) {
	if r.MaxBodySize == 0 {
		r.MaxBodySize = s.MaxBodySize
	}
	if st := r.Static; st != nil {
		if len(st.Index) == 0 {
			st.Index = []string{"index.html"}
		}
		if st.Precompressed == nil {
			t := true
			st.Precompressed = &t
		}
	}
	if c := r.CGI; c != nil {
		setDur(&c.Timeout, 30*time.Second)
		setStr(&c.User, "nobody")
		if c.MaxProcesses == 0 {
			c.MaxProcesses = 64
		}
		if c.SpoolChunked == nil {
			t := true
			c.SpoolChunked = &t
		}
	}
	if p := r.Proxy; p != nil {
		setStr(&p.Balance, "round_robin")
		if p.MaxFails == 0 {
			p.MaxFails = 1
		}
		setDur(&p.FailTimeout, 10*time.Second)
		setDur(&p.RetryTimeout, 10*time.Second)
		setDur(&p.ConnectTimeout, 5*time.Second)
		setDur(&p.ReadTimeout, 60*time.Second)
		setStr(&p.Host, "client")
		if p.Retries == 0 && len(p.Upstreams) > 1 {
			p.Retries = len(p.Upstreams) - 1
		}
		if h := p.Health; h != nil {
			setDur(&h.Interval, 5*time.Second)
			setDur(&h.Timeout, 2*time.Second)
		}
	}
	if w := r.WSGI; w != nil {
		if w.Workers == 0 {
			w.Workers = 2
		}
		setStr(&w.Python, "python3")
		setDur(&w.Timeout, 30*time.Second)
	}
	if rd := r.Redirect; rd != nil && rd.Status == 0 {
		rd.Status = 302
	}
	if c := r.Cache; c != nil {
		if c.MaxSize == 0 {
			c.MaxSize = 256 << 20
		}
		if c.MaxObjectSize == 0 {
			c.MaxObjectSize = 8 << 20
		}
		setStr(&c.Store, "memory")
		if len(c.Key) == 0 {
			c.Key = []string{"method", "scheme", "host", "path", "query"}
		}
	}
}

func setDur(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

func setStr(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// ParsePrefix parses an address ("10.0.0.1") or CIDR ("10.0.0.0/8").
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
