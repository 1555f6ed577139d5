package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"portico/internal/durhist"
)

// Per-route request metrics (what people alert on: a route's error rate
// and latency). Each route's counters and histogram are looked up once,
// when the tree is built; serving only increments them.

type routeMetrics struct {
	requests *prometheus.CounterVec
	duration *durhist.Vec
}

// routeObserver holds one route's resolved metrics.
type routeObserver struct {
	byClass  [6]prometheus.Counter // index status/100; 0 for anything odd
	duration *durhist.Histogram
}

func (m *Metrics) registerRouteMetrics() {
	m.routes = routeMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_route_requests_total",
			Help: "Requests answered, by site, route and status class (1xx..5xx); class 5xx are the route's errors.",
		}, []string{"site", "route", "class"}),
		duration: durhist.NewVec("portico_route_request_duration_seconds", "Time to serve a request, by site and route.",
			durationBuckets, "site", "route"),
	}
	m.registry.MustRegister(m.routes.requests, m.routes.duration)
}

// route resolves the metrics of one route (nil without metrics).
func (m *Metrics) route(site, path string) *routeObserver {
	if m == nil {
		return nil
	}
	o := &routeObserver{duration: m.routes.duration.With(site, path)}
	for i, class := range []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		o.byClass[i] = m.routes.requests.WithLabelValues(site, path, class)
	}
	return o
}

func (o *routeObserver) observe(status int, d time.Duration) {
	if o == nil {
		return
	}
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	o.byClass[c].Inc()
	o.duration.Observe(d)
}
