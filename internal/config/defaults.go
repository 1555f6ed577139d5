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
	if s.LogFormat == "json" {
		setStr(&s.ErrorLogFormat, "json")
	}
	setStr(&s.ErrorLogFormat, "text")
	setStr(&s.RequestID, RequestIDOff)
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
		setAccessDefaults(site.BasicAuth, site.ForwardAuth, site.RateLimit)
		for j := range site.Routes {
			applyRouteDefaults(&site.Routes[j], s)
			resolveCompression(site, &site.Routes[j])
			r := &site.Routes[j]
			setAccessDefaults(r.BasicAuth, r.ForwardAuth, r.RateLimit)
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

// Defaults of the handler sections. docs/config.md quotes them; handlers
// name them instead of repeating the numbers.
const (
	DefaultStaticIndex = "index.html"

	DefaultCGITimeout      = 30 * time.Second
	DefaultCGIUser         = "nobody"
	DefaultCGIMaxProcesses = 64
	DefaultCGIKillGrace    = 2 * time.Second

	DefaultProxyBalance        = "round_robin"
	DefaultProxyMaxFails       = 1
	DefaultProxyFailTimeout    = 10 * time.Second
	DefaultProxyRetryTimeout   = 10 * time.Second
	DefaultProxyConnectTimeout = 5 * time.Second
	DefaultProxyReadTimeout    = 60 * time.Second
	DefaultProxyHost           = "client"
	DefaultHealthInterval      = 5 * time.Second
	DefaultHealthTimeout       = 2 * time.Second

	DefaultWSGIWorkers = 2
	DefaultWSGIPython  = "python3"
	DefaultWSGITimeout = 30 * time.Second

	DefaultRedirectStatus = 302

	DefaultCacheMaxSize       = 256 << 20
	DefaultCacheMaxObjectSize = 8 << 20
	DefaultCacheStore         = "memory"
)

// DefaultCacheKey is the default primary cache key: every part. It is a
// function so that no caller can change a shared slice.
func DefaultCacheKey() []string {
	return []string{"method", "scheme", "host", "path", "query"}
}

func applyRouteDefaults(r *Route, s *Server) {
	if r.MaxBodySize == 0 {
		r.MaxBodySize = s.MaxBodySize
	}
	if r.Static != nil {
		r.Static.SetDefaults()
	}
	if r.CGI != nil {
		r.CGI.SetDefaults()
	}
	if r.Proxy != nil {
		r.Proxy.SetDefaults()
	}
	if r.WSGI != nil {
		r.WSGI.SetDefaults()
	}
	if r.Redirect != nil {
		r.Redirect.SetDefaults()
	}
	if r.FastCGI != nil {
		r.FastCGI.SetDefaults()
	}
	if r.Cache != nil {
		r.Cache.SetDefaults()
	}
}

// SetDefaults fills the unset fields of a static section. Load calls it;
// a handler's unit test may call it on a hand-built section.
func (st *Static) SetDefaults() {
	if len(st.Index) == 0 {
		st.Index = []string{DefaultStaticIndex}
	}
	if st.Precompressed == nil {
		t := true
		st.Precompressed = &t
	}
}

// SetDefaults fills the unset fields of a cgi section.
func (c *CGI) SetDefaults() {
	setDur(&c.Timeout, DefaultCGITimeout)
	setStr(&c.User, DefaultCGIUser)
	setDur(&c.KillGrace, DefaultCGIKillGrace)
	if c.MaxProcesses == 0 {
		c.MaxProcesses = DefaultCGIMaxProcesses
	}
	if c.SpoolChunked == nil {
		t := true
		c.SpoolChunked = &t
	}
}

// SetDefaults fills the unset fields of a proxy section, its health table
// included. Retries defaults to one fewer than the upstreams, so set
// Upstreams first.
func (p *Proxy) SetDefaults() {
	setStr(&p.Balance, DefaultProxyBalance)
	if p.MaxFails == 0 {
		p.MaxFails = DefaultProxyMaxFails
	}
	setDur(&p.FailTimeout, DefaultProxyFailTimeout)
	setDur(&p.RetryTimeout, DefaultProxyRetryTimeout)
	setDur(&p.ConnectTimeout, DefaultProxyConnectTimeout)
	setDur(&p.ReadTimeout, DefaultProxyReadTimeout)
	setStr(&p.Host, DefaultProxyHost)
	if p.Retries == 0 && len(p.Upstreams) > 1 {
		p.Retries = len(p.Upstreams) - 1
	}
	if h := p.Health; h != nil {
		setDur(&h.Interval, DefaultHealthInterval)
		setDur(&h.Timeout, DefaultHealthTimeout)
	}
}

// SetDefaults fills the unset fields of a wsgi section. Dir is not
// defaulted here: it depends on the config file's folder, which Load knows.
func (w *WSGI) SetDefaults() {
	if w.Workers == 0 {
		w.Workers = DefaultWSGIWorkers
	}
	setStr(&w.Python, DefaultWSGIPython)
	setDur(&w.Timeout, DefaultWSGITimeout)
}

// SetDefaults fills the unset fields of a redirect section.
func (rd *Redirect) SetDefaults() {
	if rd.Status == 0 {
		rd.Status = DefaultRedirectStatus
	}
}

// SetDefaults fills the unset fields of a cache section. An unset
// max_object_size is DefaultCacheMaxObjectSize, or max_size when that is
// smaller (a small cache still stores what fits in it).
func (c *Cache) SetDefaults() {
	if c.MaxSize == 0 {
		c.MaxSize = DefaultCacheMaxSize
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = min(DefaultCacheMaxObjectSize, c.MaxSize)
	}
	setStr(&c.Store, DefaultCacheStore)
	if len(c.Key) == 0 {
		c.Key = DefaultCacheKey()
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
