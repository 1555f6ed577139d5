package proxy

import (
	"time"

	"portico/internal/status"
)

// Upstreams reports each upstream's health and requests in flight, for
// the status page. Healthy is what the balancer uses right now: neither
// marked down by failed requests nor by the active health check.
func (h *Handler) Upstreams() []status.Upstream {
	now := time.Now().UnixNano()
	out := make([]status.Upstream, 0, len(h.bal.ups))
	for _, u := range h.bal.ups {
		out = append(out, status.Upstream{Addr: u.addr, Healthy: u.available(now), InFlight: u.active.Load(),
			Requests: u.stats.requests.Load(), Errors: u.stats.errors.Load(),
			HeadSeconds: time.Duration(u.stats.headNanos.Load()).Seconds()})
	}
	return out
}
