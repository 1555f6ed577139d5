package server

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"portico/internal/durhist"
)

// Metrics are portico's Prometheus metrics. Label lookups are cached per
// site and status, without a lock, so the request path does no map
// building, formatting or locking (a shared RWMutex read lock is a cache
// line every core writes).
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *durhist.Vec
	inflight prometheus.Gauge

	access accessCounters // access.go
	routes routeMetrics   // routemetrics.go

	sites sync.Map // site name -> *siteMetrics
}

// siteMetrics are one site's request metrics, their labels resolved.
// A site resolves them when the tree is built (build.go), so counting a
// request looks nothing up by name.
type siteMetrics struct {
	name     string
	requests *prometheus.CounterVec
	duration *durhist.Histogram
	// byCode[status] is the requests counter of that status, filled on
	// first use.
	byCode [600]atomic.Pointer[prometheus.Counter]
}

// site returns the metrics of the named site; nil without metrics.
func (m *Metrics) site(name string) *siteMetrics {
	if m == nil {
		return nil
	}
	if v, ok := m.sites.Load(name); ok {
		return v.(*siteMetrics)
	}
	v, _ := m.sites.LoadOrStore(name, &siteMetrics{name: name, requests: m.requests, duration: m.duration.With(name)})
	return v.(*siteMetrics)
}

// NewMetrics creates the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_requests_total", Help: "Requests served, by site and status code.",
		}, []string{"site", "code"}),
		duration: durhist.NewVec("portico_request_duration_seconds", "Time to serve a request, by site.",
			durationBuckets, "site"),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portico_requests_in_flight", Help: "Requests being served now.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.inflight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registerAccessMetrics()
	m.registerRouteMetrics()
	return m
}

// observe counts a request of a site: sm, the site's metrics resolved
// when the tree was built, or else (no site took the request) the
// metrics of the site named.
func (m *Metrics) observe(sm *siteMetrics, site string, status int, d time.Duration) {
	if sm == nil {
		sm = m.site(site)
	}
	sm.observe(status, d)
}

// observe counts one request of the site. A nil siteMetrics (no
// metrics) counts nothing.
func (sm *siteMetrics) observe(status int, d time.Duration) {
	if sm == nil {
		return
	}
	var c prometheus.Counter
	if status >= 0 && status < len(sm.byCode) {
		if p := sm.byCode[status].Load(); p != nil {
			c = *p
		} else {
			p = new(prometheus.Counter)
			*p = sm.requests.WithLabelValues(sm.name, strconv.Itoa(status))
			sm.byCode[status].Store(p)
			c = *p
		}
	} else {
		c = sm.requests.WithLabelValues(sm.name, strconv.Itoa(status))
	}
	c.Inc()
	sm.duration.Observe(d)
}

// durationBuckets are the upper bounds, in seconds, of the request
// duration histograms (per site and per route).
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// cacheCollector reports the response caches of the live tree.
type cacheCollector struct {
	tree                                         func() *Tree
	hits, misses, bypass, stored, entries, bytes *prometheus.Desc
}

func newCacheCollector(tree func() *Tree) *cacheCollector {
	labels := []string{"cache"}
	return &cacheCollector{
		tree:    tree,
		hits:    prometheus.NewDesc("portico_cache_hits_total", "Requests answered from the cache.", labels, nil),
		misses:  prometheus.NewDesc("portico_cache_misses_total", "Requests forwarded upstream (misses and revalidations).", labels, nil),
		bypass:  prometheus.NewDesc("portico_cache_bypass_total", "Requests the cache did not handle (unsafe methods, upgrades).", labels, nil),
		stored:  prometheus.NewDesc("portico_cache_stored_total", "Responses stored.", labels, nil),
		entries: prometheus.NewDesc("portico_cache_entries", "Objects held (memory store).", labels, nil),
		bytes:   prometheus.NewDesc("portico_cache_bytes", "Bytes held (memory store).", labels, nil),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.bypass, c.stored, c.entries, c.bytes} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.tree()
	if t == nil {
		return
	}
	for i, h := range t.caches {
		st := h.Stats()
		name := t.cacheNames[i]
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(st.Hits), name)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(st.Misses), name)
		ch <- prometheus.MustNewConstMetric(c.bypass, prometheus.CounterValue, float64(st.Bypass), name)
		ch <- prometheus.MustNewConstMetric(c.stored, prometheus.CounterValue, float64(st.Stored), name)
		if st.Entries >= 0 {
			ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries), name)
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes), name)
		}
	}
}

// Watch makes the metrics report s's live config: its caches, and what
// the status page shows (upstreams, CGI, WSGI, reloads, certificates).
func (m *Metrics) Watch(s *Server) {
	m.registry.MustRegister(newCacheCollector(s.Tree), newStatusCollector(s))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttpHandler(m.registry)
}
