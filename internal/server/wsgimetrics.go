package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"portico/internal/wsgi"
)

// wsgiCollector reports the WSGI worker pools of the live tree: workers
// by state, the request queue, and replaced workers by cause. A reload
// starts new pools, so the counters restart from zero (Prometheus takes
// that as a counter reset).
type wsgiCollector struct {
	tree                                          func() *Tree
	workers, configured, queue, recycles, timeout *prometheus.Desc
}

func newWSGICollector(tree func() *Tree) *wsgiCollector {
	labels := []string{"site", "route"}
	return &wsgiCollector{
		tree: tree,
		workers: prometheus.NewDesc("portico_wsgi_workers",
			"WSGI worker processes by state: starting (a replacement importing the app), idle, busy, retiring (replaced, finishing its request).",
			append(labels, "state"), nil),
		configured: prometheus.NewDesc("portico_wsgi_workers_configured", "The workers setting of the pool.", labels, nil),
		queue:      prometheus.NewDesc("portico_wsgi_queue_length", "Requests waiting for an idle worker.", labels, nil),
		recycles: prometheus.NewDesc("portico_wsgi_recycles_total",
			"Worker processes replaced, by cause: max_requests, max_memory, died, frozen.", append(labels, "cause"), nil),
		timeout: prometheus.NewDesc("portico_wsgi_timeouts_total", "Requests cut off by the timeout (the worker was killed).", labels, nil),
	}
}

func (c *wsgiCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.workers, c.configured, c.queue, c.recycles, c.timeout} {
		ch <- d
	}
}

func (c *wsgiCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.tree()
	if t == nil {
		return
	}
	for i := range t.cfg.Sites {
		sc := &t.cfg.Sites[i]
		live := t.liveSite(sc)
		if live == nil {
			continue
		}
		for _, rt := range live.routes {
			p := findWSGIPool(rt.handler)
			if p == nil {
				continue
			}
			st := p.Stats()
			gauge := func(d *prometheus.Desc, v int, extra ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), append([]string{sc.Name, rt.path}, extra...)...)
			}
			gauge(c.workers, st.Starting, "starting")
			gauge(c.workers, st.Idle, "idle")
			gauge(c.workers, st.Busy, "busy")
			gauge(c.workers, st.Retiring, "retiring")
			gauge(c.configured, st.Workers)
			gauge(c.queue, st.Waiting)
			for cause, n := range st.Recycles {
				ch <- prometheus.MustNewConstMetric(c.recycles, prometheus.CounterValue, float64(n), sc.Name, rt.path, cause)
			}
			ch <- prometheus.MustNewConstMetric(c.timeout, prometheus.CounterValue, float64(st.Timeouts), sc.Name, rt.path)
		}
	}
}

// findWSGIPool finds the pool under a route's wrappers (layers, cache, a
// files-first fallback), as fillLive does for the status page.
func findWSGIPool(h http.Handler) *wsgi.Pool {
	for i := 0; h != nil && i < 16; i++ {
		switch v := h.(type) {
		case *wsgi.Pool:
			return v
		case stripHandler:
			h = v.next
		case interface{ Fallback() http.Handler }:
			h = v.Fallback()
		case interface{ Unwrap() http.Handler }:
			h = v.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// WatchWSGI makes the metrics report the WSGI pools of s's live config.
func (m *Metrics) WatchWSGI(s *Server) {
	m.registry.MustRegister(newWSGICollector(s.Tree))
}
