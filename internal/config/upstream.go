package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Bounds of one proxy upstream's weight (nginx's weight=N).
const (
	MinUpstreamWeight = 1
	MaxUpstreamWeight = 1000
)

// Upstream is one parsed entry of proxy.upstreams. Exactly one of Host and
// Socket is set.
type Upstream struct {
	// Scheme is "http" or "https"; "http" for a unix socket.
	Scheme string
	// Host is the URL's "host" or "host:port" as written (IPv6 in
	// brackets); "" for a unix socket.
	Host string
	// Socket is the absolute path of a unix socket; "" for a URL.
	Socket string
	// Weight is the balancing weight, from MinUpstreamWeight to
	// MaxUpstreamWeight. Default 1.
	Weight int
	// Raw is the string that was parsed.
	Raw string
}

// ParseUpstream parses one proxy upstream: "http://host[:port]",
// "https://host[:port]" (a trailing "/" is allowed, nothing else after the
// authority) or "unix:/abs/path.sock", each optionally followed by
// whitespace and "weight=N". It is the one parser of upstreams: Load
// validates with it and the proxy builds its pool from it, so the two can
// never disagree on what an upstream is.
//
// A relative socket path is an error here: Load resolves "unix:rel.sock"
// against the folder of the file that names it before it validates, and a
// config built in memory must give absolute paths. The error does not
// name the field; callers add it.
func ParseUpstream(s string) (Upstream, error) {
	u := Upstream{Weight: 1, Raw: s}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return Upstream{}, errors.New("empty upstream")
	}
	for _, f := range fields[1:] {
		v, ok := strings.CutPrefix(f, "weight=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < MinUpstreamWeight || n > MaxUpstreamWeight {
			return Upstream{}, fmt.Errorf("%q: only \"weight=N\" (N from %d to %d) may follow the address", f, MinUpstreamWeight, MaxUpstreamWeight)
		}
		u.Weight = n
	}
	addr := fields[0]
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return Upstream{}, errors.New("want unix:/path/to.sock")
		}
		if !filepath.IsAbs(path) {
			return Upstream{}, fmt.Errorf("unix socket path %q must be absolute", path)
		}
		u.Scheme, u.Socket = "http", path
		return u, nil
	}
	pu, err := url.Parse(addr)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Hostname() == "" {
		return Upstream{}, errors.New("want http://host:port, https://host:port or unix:/path.sock")
	}
	if pu.Path != "" && pu.Path != "/" || pu.RawPath != "" || pu.RawQuery != "" || pu.ForceQuery || pu.Fragment != "" || pu.User != nil || pu.Opaque != "" {
		return Upstream{}, errors.New("an upstream is scheme://host:port only, without path, query or user")
	}
	if p := pu.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Upstream{}, errors.New("bad port")
		}
	}
	u.Scheme, u.Host = pu.Scheme, pu.Host
	return u, nil
}

// resolveUpstream makes the socket path of a "unix:rel.sock" upstream
// absolute against dir, keeping whatever follows the address (" weight=N").
// Anything else is returned unchanged, for ParseUpstream to judge.
func resolveUpstream(dir, s string) string {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return s
	}
	path, ok := strings.CutPrefix(fields[0], "unix:")
	if !ok || path == "" || filepath.IsAbs(path) {
		return s
	}
	at := strings.Index(s, fields[0])
	return s[:at] + "unix:" + resolve(dir, path) + s[at+len(fields[0]):]
}
