package cache

import "strconv"

// statusName is the cache's name in Cache-Status.
const statusName = "portico"

// cacheStatus is portico's member of Cache-Status (RFC 9211), the one
// rendering of it for both engines and every path (hit, miss,
// revalidation, bypass, collapsed, stale-if-error).
type cacheStatus struct {
	hit       bool
	fwd       string // why the request went forward, when not a hit
	fwdStatus int    // the upstream's status, 0 when not sent
	ttl       int64  // hits: remaining freshness in seconds (negative: stale served)
	stored    bool
	collapsed bool
	detail    string
}

// String renders the member with its parameters in RFC 9211 order.
func (s cacheStatus) String() string {
	b := make([]byte, 0, 64)
	b = append(b, statusName...)
	if s.hit {
		b = append(b, "; hit"...)
	} else {
		b = append(b, "; fwd="...)
		b = append(b, s.fwd...)
	}
	if s.fwdStatus != 0 {
		b = append(b, "; fwd-status="...)
		b = strconv.AppendInt(b, int64(s.fwdStatus), 10)
	}
	if s.hit {
		b = append(b, "; ttl="...)
		b = strconv.AppendInt(b, s.ttl, 10)
	}
	if s.stored {
		b = append(b, "; stored"...)
	}
	if s.collapsed {
		b = append(b, "; collapsed"...)
	}
	if s.detail != "" {
		b = append(b, "; detail="...)
		b = append(b, s.detail...)
	}
	return string(b)
}

// forwarded is the Cache-Status of a request sent upstream for reason fwd.
func forwarded(fwd string) []string { return []string{cacheStatus{fwd: fwd}.String()} }

// The cache's verdicts for the access log, in nginx's words
// ($upstream_cache_status).
const (
	logHit         = "HIT"         // answered from the store
	logMiss        = "MISS"        // nothing stored: forwarded
	logExpired     = "EXPIRED"     // stored but stale: forwarded, a full answer came
	logRevalidated = "REVALIDATED" // stored but stale: the upstream said 304
	logStale       = "STALE"       // stale served (max-stale, stale-if-error)
	logUpdating    = "UPDATING"    // stale served while a background refresh runs
	logBypass      = "BYPASS"      // not for the cache (unsafe method, Range miss, upgrade)
)
