// Package config is the schema of portico's TOML config file and its loader.
//
// The Go structs below are the contract of the config file: each field's doc
// comment states its default, unit and security caveats, and docs/config.md
// follows them. Load decodes strictly (unknown keys are errors), resolves
// relative paths against the folder of the file that names them, fills in
// defaults in one place (applyDefaults) and validates. Handlers receive the
// section of the config that concerns them and never re-parse it.
package config

// Config is a whole loaded configuration: the main file plus its includes.
type Config struct {
	Server Server `toml:"server"`
	Sites  []Site `toml:"site"`

	// File is the absolute path of the main config file ("" in quick mode).
	File string `toml:"-"`
}

// Server holds process-wide settings. Only the main file may set them.
type Server struct {
	// ShutdownTimeout bounds how long SIGTERM waits for requests in flight.
	// Default "30s".
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// AccessLog is "off", "stdout", "stderr" or a file path. Default "stdout".
	AccessLog string `toml:"access_log"`
	// LogFormat of the access log: "combined" (Apache/nginx) or "json".
	// Default "combined".
	LogFormat string `toml:"log_format"`
	// ErrorLog is where portico's own log lines go (errors, CGI stderr,
	// worker output): "stderr", "stdout" or a file path. Default "stderr".
	ErrorLog string `toml:"error_log"`
	// ErrorLogFormat is the format of portico's own log, startup lines
	// included: "text" (slog key=value lines) or "json" (one object per
	// line). Default: "json" when LogFormat is "json", else "text", so
	// log_format = "json" alone makes every log line JSON.
	ErrorLogFormat string `toml:"error_log_format"`
	// Admin is an optional "host:port" serving GET /metrics, GET /healthz,
	// POST /reload and POST /cache/purge. It must be a loopback address
	// unless AdminAllowRemote is set (with an AdminToken).
	Admin string `toml:"admin"`
	// AdminAllowRemote allows a non-loopback admin address. It needs
	// AdminToken: without one, anyone who reaches the port could reload
	// the config and purge caches.
	AdminAllowRemote bool `toml:"admin_allow_remote"`
	// AdminToken, if set, is required of every admin request as
	// "Authorization: Bearer TOKEN" (at least 16 characters).
	AdminToken string `toml:"admin_token"`
	// Include lists globs of further files holding [[site]] tables
	// (nginx's sites-enabled habit), relative to the main file.
	Include []string `toml:"include"`

	// ReadHeaderTimeout cuts off a client that trickles its request headers.
	// Default "10s".
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ReadTimeout is the longest a request body read may wait for progress:
	// the deadline moves each time bytes arrive (slow-POST defence).
	// Default "60s".
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout is the longest a response write may wait for the client to
	// take bytes; the deadline moves with progress, so long downloads and
	// streams are not cut while they move. Default "60s".
	WriteTimeout Duration `toml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default "120s".
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxHeaderBytes caps the request line plus headers; beyond it: 431.
	// Default "1MB".
	MaxHeaderBytes Size `toml:"max_header_bytes"`
	// MaxBodySize caps request bodies; beyond it: 413. Routes may override it.
	// Default "100MB". 0 is not allowed (use a large value instead).
	MaxBodySize Size `toml:"max_body_size"`
	// ACME, when set, gets and renews certificates for sites with
	// tls = "auto" (acme.go).
	ACME *ACME `toml:"acme"`
	// TrustedProxies lists addresses or CIDRs of proxies in front of portico
	// whose X-Forwarded-* headers are believed. Default: none, so incoming
	// forwarding headers are replaced, not appended to.
	TrustedProxies []string `toml:"trusted_proxies"`
	// RequestID controls X-Request-ID: "off" (default), "generate" (a new
	// id for every request, replacing any the client sent) or "pass" (keep
	// the client's id when it is 1-128 characters of letters, digits and
	// "-_.:", else generate one). The id goes upstream (proxy, CGI, WSGI),
	// into the response and into the access log.
	RequestID string `toml:"request_id"`
	// MaxConnsPerIP caps the open connections of one client address
	// (after the PROXY header, if any); a connection beyond it is closed
	// at once. Trusted proxies are exempt. Default 0: no limit.
	MaxConnsPerIP int `toml:"max_conns_per_ip"`
}

// Site is one virtual host: a set of listeners, the Host names it answers,
// and its routes.
type Site struct {
	// Name is used in logs and metrics. Default: the first host, else "default".
	Name string `toml:"name"`
	// Listen lists "host:port" addresses. Default [":8080"].
	Listen []string `toml:"listen"`
	// Hosts are matched against the request's Host (port ignored, case
	// folded): exact names first, then "*.suffix" wildcards. A site with no
	// hosts is the default site of its listeners.
	Hosts []string `toml:"hosts"`
	// TLS enables HTTPS (and HTTP/2) on all of this site's listeners:
	// { cert = "cert.pem", key = "key.pem" }, or "auto" for certificates
	// from the ACME CA of [server.acme] for every host of the site.
	TLS *TLS `toml:"tls"`
	// RedirectHTTP answers plain HTTP for the site's hosts on HTTPListen
	// with a 308 to the same URL over HTTPS (ACME challenges excepted).
	// Default false. TLS sites only.
	RedirectHTTP bool `toml:"redirect_http"`
	// HTTPListen are the plain-HTTP addresses of RedirectHTTP.
	// Default [":80"].
	HTTPListen []string `toml:"http_listen"`
	// HTTP3 serves HTTP/3 (QUIC) on the UDP side of each TLS listener and
	// advertises it with Alt-Svc. Default true on TLS sites.
	HTTP3 *bool `toml:"http3"`
	// Headers are added to every response of the site.
	Headers map[string]string `toml:"headers"`
	// HeaderRules are response header rules ([[site.header_rules]], the
	// form of [[site.route.headers]]) for every route of the site; they
	// run before the route's own rules, so a route's set wins.
	HeaderRules []HeaderRule `toml:"header_rules"`
	// RequestHeaders are request header rules ([[site.request_headers]])
	// for every route of the site, run before the route's own.
	RequestHeaders []HeaderRule `toml:"request_headers"`
	// Rewrites change the request path before routing ([[site.rewrite]]);
	// the first rule whose from matches applies.
	Rewrites []Rewrite `toml:"rewrite"`
	// Compress and the compress_* keys turn on on-the-fly compression for
	// every route of the site; a route's own keys override them.
	Compress        []string `toml:"compress"`
	CompressMinSize Size     `toml:"compress_min_size"`
	CompressTypes   []string `toml:"compress_types"`
	CompressLevel   int      `toml:"compress_level"`
	// Routes: a request goes to the route with the longest matching prefix.
	Routes []Route `toml:"route"`

	// ProxyProtocol makes this site's listeners read a PROXY protocol
	// header (v1 or v2) from server.trusted_proxies, and take the client
	// address from it. Default false. Sites sharing a listener must agree.
	ProxyProtocol bool `toml:"proxy_protocol"`
	// Access control for every route of the site (access.go); a route's
	// own key replaces the site's.
	BasicAuth   *BasicAuth   `toml:"basic_auth"`
	ForwardAuth *ForwardAuth `toml:"forward_auth"`
	Allow       []string     `toml:"allow"`
	Deny        []string     `toml:"deny"`
	RateLimit   *RateLimit   `toml:"rate_limit"`

	// Source is the file and line where the [[site]] table starts.
	Source Position `toml:"-"`
}

// TLS names a certificate and key in PEM files, or (written as the
// string "auto") asks for certificates from the ACME CA.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// Auto is set by tls = "auto".
	Auto bool `toml:"-"`
}

// Route maps a path prefix to exactly one handler.
type Route struct {
	// Path is the prefix matched against the request path. A prefix ending
	// in "/" also matches the path without it ("/api/" matches "/api").
	Path string `toml:"path"`
	// StripPrefix removes Path (less its trailing slash) from the request
	// path before the handler sees it. Default false. Proxy routes only:
	// static and cgi roots always map the route path onto the root (nginx
	// alias), and wsgi passes it as SCRIPT_NAME.
	StripPrefix bool `toml:"strip_prefix"`
	// MaxBodySize overrides server.max_body_size for this route.
	MaxBodySize Size `toml:"max_body_size"`

	Static   *Static   `toml:"static"`
	CGI      *CGI      `toml:"cgi"`
	Proxy    *Proxy    `toml:"proxy"`
	WSGI     *WSGI     `toml:"wsgi"`
	Redirect *Redirect `toml:"redirect"`
	// FastCGI runs PHP through php-fpm (see fastcgi.go).
	FastCGI *FastCGI `toml:"fastcgi"`
	// Cache may be added to proxy and wsgi routes.
	Cache *Cache `toml:"cache"`

	// Headers are response header rules, applied in order after the
	// handler and the site's headers, on any route kind:
	// [[site.route.headers]] tables.
	Headers []HeaderRule `toml:"headers"`
	// RequestHeaders are request header rules ([[site.route.request_headers]],
	// the same form without always): they edit the request a proxy, cgi
	// or wsgi handler passes on.
	RequestHeaders []HeaderRule `toml:"request_headers"`

	// Compress lists the encodings of on-the-fly compression, most
	// preferred first, from "zstd", "br", "gzip". Default: the site's;
	// off when neither sets it; [] turns the site's off for this route.
	Compress []string `toml:"compress"`
	// CompressMinSize: responses known to be smaller are sent as they
	// are. Default: the site's, else "1KB".
	CompressMinSize Size `toml:"compress_min_size"`
	// CompressTypes lists the media types compressed ("text/*",
	// "application/*+json", "image/svg+xml"). Default: the site's, else
	// text, JavaScript, JSON, XML, wasm, SVG and uncompressed fonts.
	CompressTypes []string `toml:"compress_types"`
	// CompressLevel from 1 (fastest) to 9 (smallest): gzip's level and
	// brotli's quality; zstd: 1-2 fastest, 3-5 default, 6-8 better, 9
	// best. Default: the site's, else 5.
	CompressLevel int `toml:"compress_level"`
	// Compression is the resolved compression of the route (nil: off),
	// filled by Load from the keys above and the site's.
	Compression *Compression `toml:"-"`

	// BasicAuth, ForwardAuth, Allow, Deny and RateLimit control access
	// to the route (access.go); each replaces the site's key of the same
	// name. Allow and Deny are lists of addresses or CIDRs: a client
	// address in Deny, or (when Allow is not empty) not in Allow, gets
	// 403. They run in this order: allow/deny, rate_limit, basic_auth,
	// forward_auth.
	BasicAuth   *BasicAuth   `toml:"basic_auth"`
	ForwardAuth *ForwardAuth `toml:"forward_auth"`
	Allow       []string     `toml:"allow"`
	Deny        []string     `toml:"deny"`
	RateLimit   *RateLimit   `toml:"rate_limit"`

	// FilesFirst lets a route hold both static and proxy: files are served
	// when they exist, everything else goes to the proxy (nginx's
	// `try_files $uri @app`). Quick mode's --proxy sets it; the file format
	// does not expose it.
	FilesFirst bool `toml:"-"`

	// Source is the file and line where the route is declared.
	Source Position `toml:"-"`
}

// HeaderRule edits the response header of the requests whose path it
// matches (nginx add_header, Caddy header). Within a rule, remove runs
// first, then set, then add; rules run in the order written.
type HeaderRule struct {
	// Match is a glob on the decoded request path (route prefix
	// included): "*" matches within one path segment, "**" across
	// segments, "?" one character of a segment. A pattern without a "/"
	// matches the last segment ("*.js"). Empty: every request.
	Match string `toml:"match"`
	// Set replaces the named fields (or adds them when absent).
	Set map[string]string `toml:"set"`
	// Add appends values, keeping the fields the response has.
	Add map[string]string `toml:"add"`
	// Remove deletes the named fields.
	Remove []string `toml:"remove"`
	// Always applies the rule to every status. Default false: as nginx's
	// add_header, only to 200, 201, 204, 206, 301, 302, 303, 304, 307 and
	// 308, so that a missing /assets/x.js does not get a year of
	// Cache-Control on its 404.
	Always bool `toml:"always"`
}

// Static serves files from a folder.
type Static struct {
	// Root is the folder served. Required; must exist. Nothing outside it is
	// ever served, symlinks included.
	Root string `toml:"root"`
	// Index files tried for a directory, in order. Default ["index.html"].
	Index []string `toml:"index"`
	// Browse turns on HTML directory listings. Default false (true in quick mode).
	Browse bool `toml:"browse"`
	// SPA answers GETs for missing paths whose Accept names text/html with
	// the root index.html (history-mode routing). Default false.
	SPA bool `toml:"spa"`
	// Dotfiles allows serving names starting with "." (".env", ".git/").
	// Default false: they are 404.
	Dotfiles bool `toml:"dotfiles"`
	// Precompressed serves a sibling .br/.zst/.gz file when the client
	// accepts that encoding. Default true.
	Precompressed *bool `toml:"precompressed"`
	// CacheControl, if set, is sent as the Cache-Control header of files.
	CacheControl string `toml:"cache_control"`
	// Hide lists extra folders (absolute after loading) that must never be
	// served from this root, e.g. a cgi root inside it. Filled by Load.
	Hide []string `toml:"-"`
}

// CGI runs scripts from a folder (RFC 3875).
type CGI struct {
	// Root is the folder of scripts. Required; must exist. Only regular
	// executable files (or files with an interpreter) under it run.
	Root string `toml:"root"`
	// Timeout is the wall-clock limit of one script run; past it the whole
	// process group gets SIGTERM, then SIGKILL. Default "30s".
	Timeout Duration `toml:"timeout"`
	// Env adds variables to every script's environment.
	Env map[string]string `toml:"env"`
	// User the scripts run as when portico runs as root. Default "nobody".
	User string `toml:"user"`
	// MaxProcesses caps scripts running at once; beyond it: 503 with
	// Retry-After. Default 64.
	MaxProcesses int `toml:"max_processes"`
	// Interpreters maps a file extension to a program that runs files of
	// that extension which are not executable themselves, e.g.
	// { ".py" = "python3", ".php" = "php-cgi" }.
	Interpreters map[string]string `toml:"interpreters"`
	// SpoolChunked spools chunked request bodies to a temporary file to
	// learn CONTENT_LENGTH. Default true; false answers 411 instead.
	SpoolChunked *bool `toml:"spool_chunked"`
	// KillGrace is the time a script (and what it started) gets between
	// SIGTERM and SIGKILL when it is stopped (timeout, client gone,
	// shutdown), so shell traps can run. Default "2s"; capped at Timeout.
	KillGrace Duration `toml:"kill_grace"`
	// Limits are resource limits set on every script before its first
	// instruction (setrlimit). Unset fields: no limit (portico's own).
	Limits CGILimits `toml:"limits"`
}

// CGILimits are the rlimits of every CGI script, as Apache's RLimitCPU,
// RLimitMEM and RLimitNPROC. A zero field sets no limit.
type CGILimits struct {
	// CPU is the processor time a script may use (RLIMIT_CPU), in whole
	// seconds (rounded up): past it the script gets SIGXCPU, one second
	// later SIGKILL. At least "1s".
	CPU Duration `toml:"cpu"`
	// Memory is the address space a script may map (RLIMIT_AS), e.g.
	// "256MB": allocations past it fail. Address space counts reserved
	// memory too (thread stacks, runtimes that reserve arenas), so leave
	// headroom over the resident size. At least "1MB".
	Memory Size `toml:"memory"`
	// Files is the number of descriptors a script may have open
	// (RLIMIT_NOFILE). At least 3 (stdin, stdout, stderr).
	Files int `toml:"files"`
	// Processes is the number of processes (and threads) the script's
	// user may have at once (RLIMIT_NPROC): a fork past it fails. Linux
	// counts them per user, not per script: all scripts running as that
	// user share it. At least 1.
	Processes int `toml:"processes"`
}

// Proxy forwards requests to upstream servers.
type Proxy struct {
	// Upstreams are "http://host:port" URLs or "unix:/path.sock", each
	// optionally followed by " weight=N" (nginx style, N from 1 to 1000).
	// At least one.
	Upstreams []string `toml:"upstreams"`
	// Balance is round_robin (default), least_conn, ip_hash or random
	// (two random choices, the less loaded wins).
	Balance string `toml:"balance"`
	// Health configures optional active health checks.
	Health *Health `toml:"health"`
	// MaxFails failed attempts within FailTimeout take an upstream out of
	// rotation for FailTimeout (nginx's passive checks). Default 1 and "10s".
	MaxFails    int      `toml:"max_fails"`
	FailTimeout Duration `toml:"fail_timeout"`
	// Retries bounds how many other upstreams a failed request is tried on.
	// Default (0): the number of upstreams less one. A negative value turns
	// retries off.
	Retries int `toml:"retries"`
	// RetryTimeout bounds the total time spent on retries. Default "10s".
	RetryTimeout Duration `toml:"retry_timeout"`
	// ConnectTimeout bounds dialing an upstream. Default "5s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// ReadTimeout bounds the wait for the upstream's response headers.
	// Default "60s".
	ReadTimeout Duration `toml:"read_timeout"`
	// Host is the Host header sent upstream: "client" (default: the
	// client's Host), "upstream" (the upstream's host:port) or a literal name.
	Host string `toml:"host"`
}

// Health configures active health checks of a proxy's upstreams.
type Health struct {
	// Path requested with GET on each upstream. Required.
	Path string `toml:"path"`
	// Interval between checks. Default "5s".
	Interval Duration `toml:"interval"`
	// Timeout of one check. Default "2s".
	Timeout Duration `toml:"timeout"`
	// Expect is the status code that means healthy. Default: any 2xx.
	Expect int `toml:"expect"`
}

// WSGI runs a Python WSGI app in a pool of supervised worker processes.
type WSGI struct {
	// App is "module:callable". Required.
	App string `toml:"app"`
	// Dir is the folder the module is imported from. Default: the config's folder.
	Dir string `toml:"dir"`
	// Workers is the number of Python processes. Default 2.
	Workers int `toml:"workers"`
	// Python is the interpreter. Default "python3".
	Python string `toml:"python"`
	// Timeout bounds one request inside a worker. Default "30s".
	Timeout Duration `toml:"timeout"`
	// MaxRequests recycles a worker after it has served this many
	// requests (a leak's bound, gunicorn's max_requests). 0 (default): never.
	MaxRequests int `toml:"max_requests"`
	// MaxRequestsJitter adds a random 0..N to each worker's MaxRequests, so
	// the workers of a pool do not all recycle at once. Default 0.
	MaxRequestsJitter int `toml:"max_requests_jitter"`
	// MaxMemory recycles a worker whose resident memory (RSS) passes it,
	// checked after each request. 0 (default): no limit.
	MaxMemory Size `toml:"max_memory"`
	// User the workers run as when portico runs as root. Default: portico's
	// own user (as gunicorn and uWSGI do without --user).
	User string `toml:"user"`
	// Env adds variables to the workers' environment.
	Env map[string]string `toml:"env"`
	// Warmup is a path (under the route, with an optional query) that
	// each new worker is sent once, after its import and before it takes
	// a client's request, so lazy first-request work (connections,
	// template caches) is done by then. Default: none.
	Warmup string `toml:"warmup"`
}

// Redirect answers every request with a redirect.
type Redirect struct {
	// To is the target URL. Required.
	To string `toml:"to"`
	// Status is 301, 302, 303, 307 or 308. Default 302.
	Status int `toml:"status"`
}

// Cache is an RFC 9111 shared response cache in front of a proxy or wsgi route.
type Cache struct {
	// MaxSize bounds the bytes stored (memory store). Default "256MB".
	MaxSize Size `toml:"max_size"`
	// MaxObjectSize: larger responses pass through unstored. Default "8MB",
	// or max_size when that is smaller.
	MaxObjectSize Size `toml:"max_object_size"`
	// Store is "memory" (default) or a "redis://host:port/db" URL shared by
	// several portico instances.
	Store string `toml:"store"`
	// Key lists the parts of the primary cache key, from "method",
	// "scheme", "host", "path", "query". Default: all of them. Vary
	// headers are always added as secondary keys.
	Key []string `toml:"key"`
	// IgnoreClientNoCache ignores a client's Cache-Control: no-cache /
	// Pragma: no-cache (which otherwise forces revalidation). Default false.
	IgnoreClientNoCache bool `toml:"ignore_client_no_cache"`
	// TagHeader names the response field the upstream tags responses
	// with ("Cache-Tag", comma-separated, or "Surrogate-Key",
	// space-separated), for purge by tag on the admin address. The field
	// is stripped before the client. Default "" (no tags).
	TagHeader string `toml:"tag_header"`
}
