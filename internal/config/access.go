package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The access-control keys below may be set on a [[site]] (for all its
// routes) and on a [[site.route]]; a route's own key replaces the site's
// (nginx's inheritance of auth_basic and limit_req into a location).

// BasicAuth asks for a user name and password (RFC 7617).
type BasicAuth struct {
	// Htpasswd is a file of "user:hash" lines as `htpasswd -B` writes
	// them. Only bcrypt hashes ($2y$, $2b$, $2a$) are accepted: the MD5,
	// SHA-1, crypt and plain forms are refused by `portico check`. The
	// file is read when the config is loaded and on every reload.
	Htpasswd string `toml:"htpasswd"`
	// Users are more "user" = "bcrypt hash" pairs, in the config itself.
	Users map[string]string `toml:"users"`
	// Realm is named in the WWW-Authenticate challenge. Default
	// "restricted".
	Realm string `toml:"realm"`
	// ForwardAuthorization passes the client's Authorization field on to
	// the route's handler (upstream, CGI, WSGI). Default false: the
	// password stops at portico.
	ForwardAuthorization bool `toml:"forward_authorization"`
}

// ForwardAuth asks another server whether a request may pass (the
// oauth2-proxy / Authelia pattern): the request's own method, URI and
// header fields, without its body, go to URL; a 2xx
// answer lets the request through, any other answer is sent to the
// client as it is; an auth server that cannot be reached is a 503.
// Routes with forward_auth are served by net/http (not the fast path).
type ForwardAuth struct {
	// URL of the auth endpoint, http:// or https://. Required.
	URL string `toml:"url"`
	// CopyHeaders are fields of a 2xx answer copied into the request
	// (replacing any the client sent), e.g. ["Remote-User"].
	CopyHeaders []string `toml:"copy_headers"`
	// Timeout bounds one auth request. Default "5s".
	Timeout Duration `toml:"timeout"`
}

// RateLimit bounds the request rate per key with GCRA (a token bucket
// that stores one time per key): answered 429 with Retry-After beyond it.
type RateLimit struct {
	// Rate is "N/s", "N/m" or "N/h". Required.
	Rate string `toml:"rate"`
	// Burst is how many requests a key may send at once (the bucket
	// size). Default: N of Rate (one period's worth), at least 1.
	Burst int `toml:"burst"`
	// Key is what is limited: "ip" (the client address, default),
	// "header:NAME" (each value of a request field; requests without it
	// share one budget) or "route" (one budget for everyone).
	Key string `toml:"key"`
	// Store is "memory" (default: this process) or a "redis://host:port/db"
	// URL, so that several portico instances share one budget. When Redis
	// cannot be reached, requests pass (fail open), with a log line and
	// the metric portico_ratelimit_store_errors_total.
	Store string `toml:"store"`
}

// Defaults of the access-control keys.
const (
	DefaultRealm              = "restricted"
	DefaultForwardAuthTimeout = 5 * time.Second
)

// SetDefaults fills unset fields of a basic_auth table.
func (b *BasicAuth) SetDefaults() {
	if b.Realm == "" {
		b.Realm = DefaultRealm
	}
}

// SetDefaults fills unset fields of a forward_auth table.
func (f *ForwardAuth) SetDefaults() { setDur(&f.Timeout, DefaultForwardAuthTimeout) }

// SetDefaults fills unset fields of a rate_limit table.
func (r *RateLimit) SetDefaults() {
	if r.Key == "" {
		r.Key = "ip"
	}
	if r.Store == "" {
		r.Store = "memory"
	}
	if n, _, err := ParseRate(r.Rate); err == nil && r.Burst == 0 {
		r.Burst = max(1, n)
	}
}

// setAccessDefaults fills the defaults of the access keys of a site or route.
func setAccessDefaults(b *BasicAuth, f *ForwardAuth, r *RateLimit) {
	if b != nil {
		b.SetDefaults()
	}
	if f != nil {
		f.SetDefaults()
	}
	if r != nil {
		r.SetDefaults()
	}
}

// ParseRate reads "N/s", "N/m" or "N/h" (an "r" after N is allowed, as
// nginx writes "10r/s"): N requests per period.
func ParseRate(s string) (n int, per time.Duration, err error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	num = strings.TrimSuffix(num, "r")
	if !ok {
		return 0, 0, fmt.Errorf("rate %q: want N/s, N/m or N/h, e.g. \"100/s\"", s)
	}
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return 0, 0, fmt.Errorf("rate %q: the period must be s, m or h", s)
	}
	n, err = strconv.Atoi(num)
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, 0, fmt.Errorf("rate %q: N must be a whole number from 1 to 1000000", s)
	}
	return n, per, nil
}

// HtpasswdEntry is one user of an htpasswd file or a users table.
type HtpasswdEntry struct {
	User string
	Hash string // a bcrypt hash
	Line int    // in the file; 0 for a users table
}

// ParseHtpasswd reads an htpasswd file's lines. Empty lines and lines
// starting with "#" are skipped. Every other line must be "user:hash"
// with a bcrypt hash; the error of a bad line names its number and the
// kind of hash found.
func ParseHtpasswd(data []byte) ([]HtpasswdEntry, error) {
	var out []HtpasswdEntry
	var errs []error
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			errs = append(errs, fmt.Errorf("line %d: want user:hash", n))
			continue
		}
		if err := CheckPasswordHash(user, hash); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if prev, ok := seen[user]; ok {
			errs = append(errs, fmt.Errorf("line %d: user %q is already on line %d", n, user, prev))
			continue
		}
		seen[user] = n
		out = append(out, HtpasswdEntry{User: user, Hash: hash, Line: n})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// CheckPasswordHash accepts a bcrypt hash (as `htpasswd -B` writes it)
// and names the kind of anything else.
func CheckPasswordHash(user, hash string) error {
	if hasCtl(user) || strings.ContainsAny(user, ":") {
		return fmt.Errorf("user %q: names must not hold \":\" or control characters", user)
	}
	kind := ""
	switch {
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2a$"):
		if len(hash) != 60 {
			return fmt.Errorf("user %q: bcrypt hash is %d characters long, want 60", user, len(hash))
		}
		cost, err := strconv.Atoi(hash[4:6])
		if err != nil || hash[6] != '$' || cost < 4 || cost > 31 {
			return fmt.Errorf("user %q: malformed bcrypt hash", user)
		}
		return nil
	case strings.HasPrefix(hash, "$apr1$"):
		kind = "Apache MD5 ($apr1$, htpasswd -m)"
	case strings.HasPrefix(hash, "{SHA}"):
		kind = "SHA-1 ({SHA}, htpasswd -s)"
	case strings.HasPrefix(hash, "$1$"):
		kind = "MD5-crypt ($1$)"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		kind = "SHA-crypt ($5$/$6$)"
	case strings.HasPrefix(hash, "$"):
		kind = "an unknown $ scheme"
	case len(hash) == 13:
		kind = "DES crypt (htpasswd -d)"
	default:
		kind = "a plain-text password (htpasswd -p)"
	}
	return fmt.Errorf("user %q: the hash is %s; only bcrypt is supported (make it with htpasswd -B)", user, kind)
}

// checkAccess validates the access keys of a site or a route; base is
// the key path of the table ("site[0]" or "site[0].route[1]").
func checkAccess(add func(*positions, string, string, ...any), ps *positions, base string, b *BasicAuth, f *ForwardAuth, allow, deny []string, r *RateLimit) {
	if b != nil {
		if b.Htpasswd == "" && len(b.Users) == 0 {
			add(ps, base+".basic_auth", "basic_auth needs htpasswd or users")
		}
		if b.Htpasswd != "" {
			if _, err := ReadHtpasswd(b.Htpasswd); err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					add(ps, base+".basic_auth", "%s", line)
				}
			}
		}
		for _, u := range sortedKeys(b.Users) {
			if err := CheckPasswordHash(u, b.Users[u]); err != nil {
				add(ps, base+".basic_auth", "basic_auth users: %v", err)
			}
		}
		if hasCtl(b.Realm) || strings.ContainsAny(b.Realm, `"\`) {
			add(ps, base+".basic_auth", "realm %q must not hold quotes, backslashes or control characters", b.Realm)
		}
	}
	if f != nil {
		u, err := url.Parse(f.URL)
		if f.URL == "" {
			add(ps, base+".forward_auth", "forward_auth needs url")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(ps, base+".forward_auth", "forward_auth url %q: want http://host:port/path or https://...", f.URL)
		}
		for _, h := range f.CopyHeaders {
			canon := textproto.CanonicalMIMEHeaderKey(h)
			if !validHeaderName(h) || framingFields[canon] || canon == "Host" {
				add(ps, base+".forward_auth", "copy_headers: %q is not a field a request may take", h)
			}
		}
	}
	for _, list := range []struct {
		key   string
		items []string
	}{{"allow", allow}, {"deny", deny}} {
		for k, s := range list.items {
			if _, err := ParsePrefix(s); err != nil {
				add(ps, fmt.Sprintf("%s.%s[%d]", base, list.key, k), "%s: %v", list.key, err)
			}
		}
	}
	if r != nil {
		_, _, rateErr := ParseRate(r.Rate)
		if rateErr != nil {
			add(ps, base+".rate_limit", "rate_limit: %v", rateErr)
		}
		if (r.Burst < 1 && (rateErr == nil || r.Burst != 0)) || r.Burst > 1_000_000 {
			add(ps, base+".rate_limit", "rate_limit burst must be from 1 to 1000000, not %d", r.Burst)
		}
		switch name, isHeader := strings.CutPrefix(r.Key, "header:"); {
		case r.Key == "ip", r.Key == "route":
		case isHeader && validHeaderName(name):
		default:
			add(ps, base+".rate_limit", "rate_limit key %q: want \"ip\", \"route\" or \"header:NAME\"", r.Key)
		}
		if r.Store != "memory" && !strings.HasPrefix(r.Store, "redis://") && !strings.HasPrefix(r.Store, "rediss://") {
			add(ps, base+".rate_limit", "rate_limit store must be \"memory\" or a redis:// URL, not %q", r.Store)
		}
	}
}

// maxHtpasswdSize bounds an htpasswd file.
const maxHtpasswdSize = 4 << 20

// ReadHtpasswd reads and parses an htpasswd file (ParseHtpasswd). Errors
// name the file.
func ReadHtpasswd(path string) ([]HtpasswdEntry, error) {
	data, err := readConfig(path, true)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %s", path, unwrapPathError(err))
	}
	if len(data) > maxHtpasswdSize {
		return nil, fmt.Errorf("htpasswd %s: larger than %dMB", path, maxHtpasswdSize>>20)
	}
	entries, err := ParseHtpasswd(data)
	if err != nil {
		var msgs []string
		for _, line := range strings.Split(err.Error(), "\n") {
			msgs = append(msgs, fmt.Sprintf("htpasswd %s %s", path, line))
		}
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	return entries, nil
}

// checkProxyProtocol: the sites of one listener must agree on
// proxy_protocol, and someone must be trusted to send the header.
func checkProxyProtocol(add func(*positions, string, string, ...any), psOf func(int) *positions, localBase func(int) string, cfg *Config) {
	seen := map[string]int{}
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		if s.ProxyProtocol && len(cfg.Server.TrustedProxies) == 0 {
			add(psOf(i), localBase(i)+".proxy_protocol", "proxy_protocol needs server.trusted_proxies: the load balancers allowed to send PROXY headers")
		}
		for _, l := range s.Listen {
			key := ListenerKey(l)
			if j, ok := seen[key]; ok && cfg.Sites[j].ProxyProtocol != s.ProxyProtocol {
				add(psOf(i), localBase(i)+".proxy_protocol", "listener %s: site %q and site %q disagree on proxy_protocol", l, cfg.Sites[j].Name, s.Name)
				continue
			}
			seen[key] = i
		}
	}
	if cfg.Server.MaxConnsPerIP < 0 {
		add(psOf(-1), "server.max_conns_per_ip", "max_conns_per_ip must not be negative")
	}
}
