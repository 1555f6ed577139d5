package config

import (
	"errors"
	"net"
	"strings"
	"time"
)

// FastCGI runs scripts through a FastCGI responder such as php-fpm (nginx's
// fastcgi_pass + try_files + front controller habit):
//
//	fastcgi = { upstream = "unix:/run/php/php8.2-fpm.sock", root = "public", index = "index.php", split_path = ".php" }
//
// The URL path Prefix+"/a/x.php/more" runs Root/a/x.php with PATH_INFO
// "/more"; a path naming an existing file that is not a script is served
// as a static file from Root; any other path runs Root/Index (the front
// controller, for pretty URLs).
type FastCGI struct {
	// Upstream is the responder's address: "unix:/path.sock" (relative
	// paths resolve against the config file's folder) or "host:port".
	// Required.
	Upstream string `toml:"upstream"`
	// Root is the folder of the scripts (the document root). Required;
	// must exist. Only regular files under it run, symlinks that lead
	// outside it never.
	Root string `toml:"root"`
	// Index is the script run for a folder, and the front controller run
	// for paths that name no file. A plain file name ending in SplitPath.
	// Default "index.php".
	Index string `toml:"index"`
	// SplitPath is the extension that marks a script: the URL path is cut
	// after the first segment ending in it into SCRIPT_NAME and PATH_INFO
	// (nginx's fastcgi_split_path_info ^(.+?\.php)(/.*)$). Files with it
	// are never sent as static files. Default ".php".
	SplitPath string `toml:"split_path"`
	// Env adds FastCGI parameters to every request (php-fpm puts them in
	// $_SERVER). Names portico sets per request may not be given.
	Env map[string]string `toml:"env"`
	// MaxConns caps the connections to the responder, busy and idle; a
	// request waits for one (up to ConnectTimeout, then 503). Set it to
	// the pool's pm.max_children: a php-fpm child serves one kept-alive
	// connection at a time, so connections beyond its children would wait
	// in its backlog. Default 5 (Debian's pm.max_children), at most 1024.
	MaxConns int `toml:"max_conns"`
	// ConnectTimeout bounds waiting for a free connection plus dialing.
	// Default "5s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// ReadTimeout is the longest wait between two reads from the
	// responder (the response header included): a script quiet for longer
	// is cut (504 before its header). Default "60s".
	ReadTimeout Duration `toml:"read_timeout"`
}

// Defaults of the fastcgi section. docs/config.md quotes them.
const (
	DefaultFastCGIIndex          = "index.php"
	DefaultFastCGISplitPath      = ".php"
	DefaultFastCGIMaxConns       = 5
	MaxFastCGIMaxConns           = 1024
	DefaultFastCGIConnectTimeout = 5 * time.Second
	DefaultFastCGIReadTimeout    = 60 * time.Second
)

// SetDefaults fills the unset fields of a fastcgi section.
func (f *FastCGI) SetDefaults() {
	setStr(&f.Index, DefaultFastCGIIndex)
	setStr(&f.SplitPath, DefaultFastCGISplitPath)
	if f.MaxConns == 0 {
		f.MaxConns = DefaultFastCGIMaxConns
	}
	setDur(&f.ConnectTimeout, DefaultFastCGIConnectTimeout)
	setDur(&f.ReadTimeout, DefaultFastCGIReadTimeout)
}

// fastCGIReservedParams are the parameters portico sets for each request;
// fastcgi.env may not set them (it could fake the client's address or the
// script run).
var fastCGIReservedParams = map[string]bool{
	"AUTH_TYPE": true, "CONTENT_LENGTH": true, "CONTENT_TYPE": true,
	"GATEWAY_INTERFACE": true, "PATH_INFO": true, "PATH_TRANSLATED": true,
	"QUERY_STRING": true, "REMOTE_ADDR": true, "REMOTE_HOST": true,
	"REMOTE_USER": true, "REMOTE_PORT": true, "REQUEST_METHOD": true,
	"SCRIPT_NAME": true, "SCRIPT_FILENAME": true, "SERVER_NAME": true,
	"SERVER_PORT": true, "SERVER_PROTOCOL": true, "SERVER_SOFTWARE": true,
	"SERVER_ADDR": true, "REQUEST_URI": true, "REQUEST_SCHEME": true,
	"HTTPS": true, "REDIRECT_STATUS": true, "DOCUMENT_ROOT": true,
	"DOCUMENT_URI": true,
}

// ParseFastCGIUpstream parses fastcgi.upstream with ParseUpstream (the one
// upstream parser): "unix:/abs/path.sock" gives ("unix", path), "host:port"
// (nginx's fastcgi_pass form, no scheme, port required) gives ("tcp",
// "host:port"). A weight means nothing for one responder and is refused.
func ParseFastCGIUpstream(s string) (network, address string, err error) {
	if strings.ContainsAny(strings.TrimSpace(s), " \t") {
		return "", "", errors.New("one address only (\"unix:/path.sock\" or \"host:port\"), nothing after it")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", errors.New("empty upstream")
	}
	if !strings.HasPrefix(s, "unix:") {
		if strings.Contains(s, "://") {
			return "", "", errors.New("want \"host:port\" without a scheme, or \"unix:/path.sock\"")
		}
		if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
			return "", "", errors.New("want \"host:port\" (the port is required) or \"unix:/path.sock\"")
		}
		s = "http://" + s
	}
	u, err := ParseUpstream(s)
	if err != nil {
		return "", "", err
	}
	if u.Socket != "" {
		return "unix", u.Socket, nil
	}
	return "tcp", u.Host, nil
}

// checkFastCGI validates a fastcgi section whose defaults are applied.
func checkFastCGI(add addFunc, ps *positions, base string, f *FastCGI) {
	if f.Upstream == "" {
		add(ps, base+".upstream", "fastcgi needs an upstream (\"unix:/run/php/php8.2-fpm.sock\" or \"127.0.0.1:9000\")")
	} else if _, _, err := ParseFastCGIUpstream(f.Upstream); err != nil {
		add(ps, base+".upstream", "upstream %q: %v", f.Upstream, err)
	}
	checkDir(add, ps, base+".root", "fastcgi root", f.Root)
	split := f.SplitPath
	splitOK := len(split) >= 2 && split[0] == '.' && !strings.ContainsAny(split, "/\\\x00") && !hasCtl(split)
	if !splitOK {
		add(ps, base+".split_path", "split_path %q must be an extension like \".php\"", split)
	}
	switch {
	case f.Index == "" || strings.ContainsAny(f.Index, "/\\\x00") || f.Index[0] == '.' || hasCtl(f.Index):
		add(ps, base+".index", "index %q must be a plain file name like \"index.php\"", f.Index)
	case splitOK && !strings.HasSuffix(f.Index, split):
		add(ps, base+".index", "index %q must end in split_path %q (it is a script)", f.Index, split)
	}
	if f.MaxConns < 1 || f.MaxConns > MaxFastCGIMaxConns {
		add(ps, base+".max_conns", "max_conns must be from 1 to %d (php-fpm's pm.max_children)", MaxFastCGIMaxConns)
	}
	if f.ConnectTimeout < 0 {
		add(ps, base+".connect_timeout", "connect_timeout must not be negative")
	}
	if f.ReadTimeout < 0 {
		add(ps, base+".read_timeout", "read_timeout must not be negative")
	}
	for _, k := range sortedKeys(f.Env) {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(f.Env[k], "\x00"):
			add(ps, base+".env", "env %q: names must be non-empty without \"=\", and neither name nor value may hold a NUL byte", k)
		case fastCGIReservedParams[k] || strings.HasPrefix(k, "HTTP_"):
			add(ps, base+".env", "env %q is set by portico for each request", k)
		}
	}
}
