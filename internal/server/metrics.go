package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are portico's Prometheus metrics. Label lookups are cached per
// (site, status) so the request path does no map building or formatting.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge

	mu       sync.RWMutex
	counters map[siteStatus]prometheus.Counter
	hists    map[string]prometheus.Observer
}

type siteStatus struct {
	site   string
	status int
}

// NewMetrics creates the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_requests_total", Help: "Requests served, by site and status code.",
		}, []string{"site", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "portico_request_duration_seconds", Help: "Time to serve a request, by site.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"site"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portico_requests_in_flight", Help: "Requests being served now.",
		}),
		counters: map[siteStatus]prometheus.Counter{},
		hists:    map[string]prometheus.Observer{},
	}
	m.Registry.MustRegister(m.requests, m.duration, m.inflight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observe(site string, status int, d time.Duration) {
	if m == nil {
		return
	}
	key := siteStatus{site, status}
	m.mu.RLock()
	c, ok := m.counters[key]
	h, hok := m.hists[site]
	m.mu.RUnlock()
	if !ok || !hok {
		m.mu.Lock()
		if c, ok = m.counters[key]; !ok {
			c = m.requests.WithLabelValues(site, strconv.Itoa(status))
			m.counters[key] = c
		}
		if h, hok = m.hists[site]; !hok {
			h = m.duration.WithLabelValues(site)
			m.hists[site] = h
		}
		m.mu.Unlock()
	}
	c.Inc()
	h.Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttpHandler(m.Registry)
}
