package config

// Upper bounds of the counts a config sets. Each is far above what a real
// deployment asks for, and low enough that a typo (a few extra zeros) is
// refused with its file and line instead of forking a hundred thousand
// processes: `workers = 100000` once kept `portico check` forking Python
// for ten minutes. They do not depend on the machine, so a config that
// checks on a laptop checks on the server it is deployed to.
const (
	// MaxWSGIWorkers bounds wsgi.workers. Each worker is a whole Python
	// process (30 MB and more); gunicorn advises 2 to 4 per CPU core, so
	// 1024 covers a 256-core machine.
	MaxWSGIWorkers = 1024
	// MaxCGIProcesses bounds cgi.max_processes, the scripts running at
	// once. Apache's MaxRequestWorkers defaults to 256 (event MPM, 400).
	MaxCGIProcesses = 4096
	// MaxProxyUpstreams bounds the upstreams of one proxy route.
	MaxProxyUpstreams = 64
	// MaxProxyRetries bounds proxy.retries: a request is tried on at most
	// this many other upstreams, and a route has at most MaxProxyUpstreams.
	MaxProxyRetries = MaxProxyUpstreams
	// MaxProxyMaxFails bounds proxy.max_fails (nginx's default is 1).
	MaxProxyMaxFails = 1000
	// MaxWSGIMaxRequests bounds wsgi.max_requests and max_requests_jitter.
	MaxWSGIMaxRequests = 1_000_000_000
	// MinWSGIMaxMemory is the least wsgi.max_memory: a Python worker uses
	// about 10 MB at rest, so a lower limit would recycle every worker
	// after every request.
	MinWSGIMaxMemory = 16 << 20
)

// checkCGICounts, checkProxyCounts and checkWSGICounts check the counts of
// one section against their bounds; base is the section's key path
// ("site[0].route[1].cgi").
func checkCGICounts(add addFunc, ps *positions, base string, c *CGI) {
	switch {
	case c.MaxProcesses < 1:
		add(ps, base+".max_processes", "max_processes must be at least 1")
	case c.MaxProcesses > MaxCGIProcesses:
		add(ps, base+".max_processes", "max_processes %d is more than %d: each is a running script process (Apache's MaxRequestWorkers defaults to 256)", c.MaxProcesses, MaxCGIProcesses)
	}
}

func checkProxyCounts(add addFunc, ps *positions, base string, p *Proxy) {
	if len(p.Upstreams) > MaxProxyUpstreams {
		add(ps, base+".upstreams", "proxy has %d upstreams, at most %d per route", len(p.Upstreams), MaxProxyUpstreams)
	}
	switch {
	case p.MaxFails < 0:
		add(ps, base+".max_fails", "max_fails must not be negative")
	case p.MaxFails > MaxProxyMaxFails:
		add(ps, base+".max_fails", "max_fails %d is more than %d", p.MaxFails, MaxProxyMaxFails)
	}
	if p.Retries > MaxProxyRetries {
		add(ps, base+".retries", "retries %d is more than %d (a route has at most %d upstreams)", p.Retries, MaxProxyRetries, MaxProxyUpstreams)
	}
}

func checkWSGICounts(add addFunc, ps *positions, base string, w *WSGI) {
	switch {
	case w.Workers < 1:
		add(ps, base+".workers", "workers must be at least 1")
	case w.Workers > MaxWSGIWorkers:
		add(ps, base+".workers", "workers %d is more than %d: each worker is a Python process (gunicorn advises 2 to 4 per CPU core)", w.Workers, MaxWSGIWorkers)
	}
	switch {
	case w.MaxRequests < 0:
		add(ps, base+".max_requests", "max_requests must not be negative (0: never recycle)")
	case w.MaxRequests > MaxWSGIMaxRequests:
		add(ps, base+".max_requests", "max_requests %d is more than %d", w.MaxRequests, MaxWSGIMaxRequests)
	}
	switch {
	case w.MaxRequestsJitter < 0:
		add(ps, base+".max_requests_jitter", "max_requests_jitter must not be negative")
	case w.MaxRequestsJitter > MaxWSGIMaxRequests:
		add(ps, base+".max_requests_jitter", "max_requests_jitter %d is more than %d", w.MaxRequestsJitter, MaxWSGIMaxRequests)
	case w.MaxRequestsJitter > 0 && w.MaxRequests == 0:
		add(ps, base+".max_requests_jitter", "max_requests_jitter needs max_requests")
	}
	if w.MaxMemory != 0 && w.MaxMemory < MinWSGIMaxMemory {
		add(ps, base+".max_memory", "max_memory %d bytes is below 16MB: a Python worker uses about 10MB at rest, so every worker would be recycled after every request", int64(w.MaxMemory))
	}
}
