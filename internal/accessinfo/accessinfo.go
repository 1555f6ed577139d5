// Package accessinfo lets the handlers behind a request tell the access log
// what nginx calls $upstream_cache_status, $upstream_addr and
// $upstream_response_time, on both engines: the server's net/http response
// recorder and fastpath.ResponseWriter implement Reporter, and a handler
// finds it under the writer it was given (through Unwrap, as
// http.ResponseController does) without knowing who logs.
package accessinfo

import (
	"net/http"
	"time"
)

// Reporter receives what a request's handlers learnt about its answer.
type Reporter interface {
	// ReportCacheStatus sets the cache's verdict: HIT, MISS, EXPIRED,
	// REVALIDATED, STALE, UPDATING or BYPASS (nginx's words).
	ReportCacheStatus(status string)
	// ReportUpstream adds one upstream attempt: its address and how long
	// it took (to the end of the response for the last one). Retries make
	// several, logged comma-separated as nginx does.
	ReportUpstream(addr string, took time.Duration)
	// Recording reports whether reports are kept; Find skips a Reporter
	// that keeps nothing, so a handler does no work for it.
	Recording() bool
}

// maxUnwrap bounds the walk down a chain of wrapped writers.
const maxUnwrap = 16

// Find returns the Reporter w is or wraps, nil when nobody records (no
// access log, or a writer that does not unwrap).
func Find(w http.ResponseWriter) Reporter {
	for range maxUnwrap {
		switch v := w.(type) {
		case Reporter:
			if !v.Recording() {
				return nil
			}
			return v
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
			if w == nil {
				return nil
			}
		default:
			return nil
		}
	}
	return nil
}

// CacheStatus reports a cache verdict to the Reporter under w, if any.
func CacheStatus(w http.ResponseWriter, status string) {
	if rep := Find(w); rep != nil {
		rep.ReportCacheStatus(status)
	}
}
