package proxy

import (
	"time"

	"portico/internal/accessinfo"
)

// upstreamTrace carries the access log's Reporter from ServeHTTP to the
// transport, which alone knows which upstream each attempt went to. It
// lives in the outgoing request's context only when an access log records.
type upstreamTrace struct {
	rep      accessinfo.Reporter
	lastAddr string    // the attempt whose response is relayed
	lastSent time.Time // when it was sent
}

type traceKey struct{}

// attempt reports an attempt that failed or was retried.
func (t *upstreamTrace) attempt(addr string, sent time.Time) {
	if t != nil {
		t.rep.ReportUpstream(addr, time.Since(sent))
	}
}

// answered notes the attempt whose response goes to the client; its time
// is reported by finish, once the response is relayed (as nginx's
// $upstream_response_time counts to the end of the response).
func (t *upstreamTrace) answered(addr string, sent time.Time) {
	if t != nil {
		t.lastAddr, t.lastSent = addr, sent
	}
}

func (t *upstreamTrace) finish() {
	if t.lastAddr != "" {
		t.rep.ReportUpstream(t.lastAddr, time.Since(t.lastSent))
	}
}
