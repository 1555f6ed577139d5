package proxy

import (
	"sync/atomic"
	"time"
)

// upstreamStats are an upstream's counters for the status page and
// metrics, kept by both engines through observe.
type upstreamStats struct {
	requests  atomic.Int64 // attempts that got a response head
	errors    atomic.Int64 // attempts that failed or got a 5xx
	headNanos atomic.Int64 // time to the response head, summed over requests
}

// observe records one attempt at u: status 0 for one that got no
// response (connect error, timeout, broken answer), else its status, and
// how long it took to the response head.
func (u *upstream) observe(status int, d time.Duration) {
	if status == 0 {
		u.stats.errors.Add(1)
		return
	}
	u.stats.requests.Add(1)
	u.stats.headNanos.Add(int64(d))
	if status >= 500 {
		u.stats.errors.Add(1)
	}
}
