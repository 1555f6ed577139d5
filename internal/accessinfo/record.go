package accessinfo

import (
	"strconv"
	"time"
)

// Record is the storage of a Reporter, embedded by both engines' writers.
// It records nothing until SetRecording(true): without an access log a
// request pays no allocation for it.
type Record struct {
	on          bool
	cacheStatus string
	addrs       []byte // "127.0.0.1:8081, 127.0.0.1:8082"
	times       []byte // "0.002, 0.013" (seconds, as nginx)
}

var _ Reporter = (*Record)(nil)

// SetRecording turns recording on (the access log is on) or off.
func (r *Record) SetRecording(on bool) { r.on = on }

// Recording reports whether anything reported is kept (Find skips a
// Reporter that does not record).
func (r *Record) Recording() bool { return r.on }

// ReportCacheStatus implements Reporter.
func (r *Record) ReportCacheStatus(status string) {
	if r.on {
		r.cacheStatus = status
	}
}

// ReportUpstream implements Reporter.
func (r *Record) ReportUpstream(addr string, took time.Duration) {
	if !r.on {
		return
	}
	if len(r.addrs) > 0 {
		r.addrs = append(r.addrs, ", "...)
		r.times = append(r.times, ", "...)
	}
	r.addrs = append(r.addrs, addr...)
	r.times = strconv.AppendFloat(r.times, took.Seconds(), 'f', 3, 64)
}

// Reported reports whether a cache or an upstream reported anything.
func (r *Record) Reported() bool { return r.cacheStatus != "" || len(r.addrs) > 0 }

// CacheStatus is the reported cache verdict, "" if none.
func (r *Record) CacheStatus() string { return r.cacheStatus }

// UpstreamAddrs are the reported upstream addresses, comma-separated.
func (r *Record) UpstreamAddrs() []byte { return r.addrs }

// UpstreamTimes are the reported upstream times in seconds, comma-separated.
func (r *Record) UpstreamTimes() []byte { return r.times }
