package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// statusCollector exports what the status page shows, read from the same
// snapshot at scrape time: upstream health, in-flight requests, counts and
// response time; CGI processes and timeouts; WSGI workers; reloads; and
// when each certificate expires.
type statusCollector struct {
	s *Server

	upUp, upInFlight, upRequests, upErrors, upHead  *prometheus.Desc
	cgiRunning, cgiMax, cgiTimeouts                 *prometheus.Desc
	wsgiWorkers, wsgiQueue, wsgiRestarts, wsgiTimes *prometheus.Desc
	wsgiRecycles                                    *prometheus.Desc
	reloads, certExpiry                             *prometheus.Desc
}

func newStatusCollector(s *Server) *statusCollector {
	up := []string{"site", "route", "upstream"}
	rt := []string{"site", "route"}
	return &statusCollector{
		s:            s,
		upUp:         prometheus.NewDesc("portico_upstream_up", "1 while the upstream is in rotation (not marked down by failures or health checks).", up, nil),
		upInFlight:   prometheus.NewDesc("portico_upstream_in_flight", "Requests being sent to or answered by the upstream now.", up, nil),
		upRequests:   prometheus.NewDesc("portico_upstream_requests_total", "Attempts at the upstream that got a response head.", up, nil),
		upErrors:     prometheus.NewDesc("portico_upstream_errors_total", "Attempts at the upstream that failed (no connection, no or a broken answer) or got a 5xx.", up, nil),
		upHead:       prometheus.NewDesc("portico_upstream_response_head_seconds", "Time from sending a request to the upstream's response head.", up, nil),
		cgiRunning:   prometheus.NewDesc("portico_cgi_processes", "CGI scripts running now.", rt, nil),
		cgiMax:       prometheus.NewDesc("portico_cgi_max_processes", "The route's max_processes.", rt, nil),
		cgiTimeouts:  prometheus.NewDesc("portico_cgi_timeouts_total", "CGI scripts stopped by the timeout.", rt, nil),
		wsgiWorkers:  prometheus.NewDesc("portico_wsgi_workers", "WSGI worker processes by state (idle, busy, starting: a replacement importing the app, retiring: replaced, finishing its request); configured is the pool's size.", append(rt, "state"), nil),
		wsgiRecycles: prometheus.NewDesc("portico_wsgi_recycles_total", "WSGI worker processes replaced, by cause (max_requests, max_memory, died, frozen).", append(rt, "cause"), nil),
		wsgiQueue:    prometheus.NewDesc("portico_wsgi_queue", "Requests waiting for a WSGI worker.", rt, nil),
		wsgiRestarts: prometheus.NewDesc("portico_wsgi_restarts_total", "WSGI workers started to replace one that exited.", rt, nil),
		wsgiTimes:    prometheus.NewDesc("portico_wsgi_timeouts_total", "WSGI requests cut off by the timeout (worker killed).", rt, nil),
		reloads:      prometheus.NewDesc("portico_reloads_total", "Config reloads by result (ok, failed).", []string{"result"}, nil),
		certExpiry:   prometheus.NewDesc("portico_tls_certificate_expiry_timestamp_seconds", "When a served certificate expires (Unix time).", []string{"site", "names", "source"}, nil),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.upUp, c.upInFlight, c.upRequests, c.upErrors, c.upHead,
		c.cgiRunning, c.cgiMax, c.cgiTimeouts, c.wsgiWorkers, c.wsgiQueue, c.wsgiRestarts, c.wsgiTimes, c.wsgiRecycles,
		c.reloads, c.certExpiry} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	counter(c.reloads, float64(snap.Reloads.OK), "ok")
	counter(c.reloads, float64(snap.Reloads.Failed), "failed")
	for _, site := range snap.Sites {
		for _, cert := range site.Certificates {
			source := "file"
			if cert.ACME {
				source = "acme"
			}
			gauge(c.certExpiry, float64(cert.NotAfter.Unix()), site.Name, strings.Join(cert.Names, ","), source)
		}
		for _, r := range site.Routes {
			for _, u := range r.Upstreams {
				upv := 0.0
				if u.Healthy {
					upv = 1
				}
				gauge(c.upUp, upv, site.Name, r.Path, u.Addr)
				gauge(c.upInFlight, float64(u.InFlight), site.Name, r.Path, u.Addr)
				counter(c.upRequests, float64(u.Requests), site.Name, r.Path, u.Addr)
				counter(c.upErrors, float64(u.Errors), site.Name, r.Path, u.Addr)
				ch <- prometheus.MustNewConstSummary(c.upHead, uint64(u.Requests), u.HeadSeconds, nil, site.Name, r.Path, u.Addr)
			}
			if g := r.CGI; g != nil {
				gauge(c.cgiRunning, float64(g.Running), site.Name, r.Path)
				gauge(c.cgiMax, float64(g.Max), site.Name, r.Path)
				counter(c.cgiTimeouts, float64(g.Timeouts), site.Name, r.Path)
			}
			if w := r.WSGI; w != nil {
				gauge(c.wsgiWorkers, float64(w.Idle), site.Name, r.Path, "idle")
				gauge(c.wsgiWorkers, float64(w.Busy), site.Name, r.Path, "busy")
				gauge(c.wsgiWorkers, float64(w.Starting), site.Name, r.Path, "starting")
				gauge(c.wsgiWorkers, float64(w.Retiring), site.Name, r.Path, "retiring")
				for cause, n := range w.Recycles {
					counter(c.wsgiRecycles, float64(n), site.Name, r.Path, cause)
				}
				gauge(c.wsgiWorkers, float64(w.Workers), site.Name, r.Path, "configured")
				gauge(c.wsgiQueue, float64(w.Waiting), site.Name, r.Path)
				counter(c.wsgiRestarts, float64(w.Restarts), site.Name, r.Path)
				counter(c.wsgiTimes, float64(w.Timeouts), site.Name, r.Path)
			}
		}
	}
}
