// Package status is the plain data of portico's status page: what the
// admin address shows at GET / (HTML) and GET /?format=json. The server
// fills a Snapshot from its live handler tree; the admin package renders
// it. Keeping the data here, apart from both, lets each handler package
// report on itself without importing the server or the admin endpoints.
package status

import "time"

// Snapshot is the state of one running portico at one moment.
type Snapshot struct {
	Version string    `json:"version"`
	Now     time.Time `json:"now"`
	Started time.Time `json:"started"`
	// UptimeSeconds is Now - Started, whole seconds.
	UptimeSeconds int64      `json:"uptime_seconds"`
	Reload        *Reload    `json:"last_reload,omitempty"` // nil: never reloaded
	Reloads       Counts     `json:"reloads"`
	Listeners     []Listener `json:"listeners"`
	Sites         []Site     `json:"sites"`
	// InFlight is the number of requests being served now.
	InFlight int64 `json:"in_flight"`
}

// Counts are ok/failed counters.
type Counts struct {
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
}

// Reload is the outcome of the last reload.
type Reload struct {
	At    time.Time `json:"at"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

// Listener is one address portico accepts connections on.
type Listener struct {
	Addr  string   `json:"addr"` // as bound ("127.0.0.1:8080")
	TLS   bool     `json:"tls"`
	Sites []string `json:"sites"`
}

// Site is one [[site]] of the config.
type Site struct {
	Name   string   `json:"name"`
	Hosts  []string `json:"hosts"` // empty: the default site of its listeners
	Listen []string `json:"listen"`
	TLS    bool     `json:"tls"`
	Routes []Route  `json:"routes"`
	// Certificates are those the site serves now (files or ACME).
	Certificates []Certificate `json:"certificates,omitempty"`
}

// Certificate is one certificate a TLS site serves.
type Certificate struct {
	Names    []string  `json:"names"`
	NotAfter time.Time `json:"not_after"`
	ACME     bool      `json:"acme"`
}

// Route is one route of a site with what its handler reports.
type Route struct {
	Path string `json:"path"`
	// Kind is the handler: static, cgi, proxy, wsgi, redirect, fastcgi.
	Kind      string     `json:"kind"`
	Target    string     `json:"target,omitempty"` // root folder, app or redirect target
	Upstreams []Upstream `json:"upstreams,omitempty"`
	Cache     *Cache     `json:"cache,omitempty"`
	CGI       *CGI       `json:"cgi,omitempty"`
	WSGI      *WSGI      `json:"wsgi,omitempty"`
}

// Upstream is one app server behind a proxy route.
type Upstream struct {
	Addr     string `json:"addr"`
	Healthy  bool   `json:"healthy"`
	InFlight int64  `json:"in_flight"`
	// Requests counts attempts that got a response head; Errors, attempts
	// that failed (no connection, a broken or late answer) or got a 5xx.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// HeadSeconds is the total time from sending to the response head
	// over Requests (the mean is HeadSeconds / Requests).
	HeadSeconds float64 `json:"head_seconds"`
}

// Cache is a route's response cache.
type Cache struct {
	Hits    int64 `json:"hits"`
	Misses  int64 `json:"misses"`
	Bypass  int64 `json:"bypass"`
	Stored  int64 `json:"stored"`
	Entries int64 `json:"entries"` // -1: not known (shared store)
	Bytes   int64 `json:"bytes"`   // -1: not known (shared store)
	MaxSize int64 `json:"max_size"`
	// HitRatio is Hits / (Hits + Misses), 0 before any request.
	HitRatio float64 `json:"hit_ratio"`
}

// CGI is a cgi route's process count.
type CGI struct {
	Running  int   `json:"running"`
	Max      int   `json:"max"`
	Timeouts int64 `json:"timeouts"`
}

// WSGI is a wsgi route's worker pool by state.
type WSGI struct {
	Workers  int    `json:"workers"` // configured
	Alive    int    `json:"alive"`
	Idle     int    `json:"idle"`
	Busy     int    `json:"busy"`
	Starting int    `json:"starting"` // replacements importing the app
	Retiring int    `json:"retiring"` // replaced, finishing their request
	Waiting  int    `json:"waiting"`  // requests queued for a worker
	Restarts uint64 `json:"restarts"`
	Timeouts uint64 `json:"timeouts"`
	// Recycles counts replaced processes by cause: max_requests,
	// max_memory, died, frozen.
	Recycles map[string]uint64 `json:"recycles,omitempty"`
}
