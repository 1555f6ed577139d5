package proxy

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// The retry rules of both engines (transport.go for net/http, fast.go for
// the fast path): which attempts may go to another upstream, and when
// retrying stops. Each engine runs its own attempt loop (one sends an
// *http.Request, the other raw bytes) and asks a retryState.

// errNoUpstream is returned when no upstream is left to try.
var errNoUpstream = errors.New("no upstream available")

// upstreamError names the upstream a transport error came from.
type upstreamError struct {
	addr string
	err  error
}

func (e *upstreamError) Error() string { return "upstream " + e.addr + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// idempotent reports whether a request with this method may be sent twice
// (RFC 9110 section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// isDialError reports whether err means no connection was made, so nothing
// of the request reached the upstream.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryStatus reports whether an answer with this status may be retried
// on another upstream (for an idempotent, bodiless request).
func retryStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// retryState is the retry bookkeeping of one request: the upstreams tried
// so far (a bit per upstream index, for balancer.pick), the attempts
// left, and the retry_timeout deadline, which starts with the first
// attempt.
type retryState struct {
	tried    uint64
	attempt  int // attempts started
	attempts int // attempts allowed: retries + 1
	timeout  time.Duration
	deadline time.Time
	lastErr  error
}

func (h *Handler) newRetryState() retryState {
	return retryState{attempts: h.retries + 1, timeout: h.retryTimeout}
}

// start records an attempt on u.
func (s *retryState) start(u *upstream, now time.Time) {
	s.tried |= 1 << uint(u.idx)
	if s.attempt == 0 && s.attempts > 1 {
		s.deadline = now.Add(s.timeout)
	}
	s.attempt++
}

// more reports whether another attempt is allowed at all.
func (s *retryState) more(now time.Time) bool {
	return s.attempt < s.attempts && !now.After(s.deadline)
}

// afterError records the failed attempt on u and reports whether the
// request may be tried on another upstream: if what failed was the
// connection (nothing reached the upstream), whatever the method;
// otherwise only an idempotent one. The caller also makes sure the
// request's body, if any, was not read yet.
func (s *retryState) afterError(u *upstream, err error, idem bool, now time.Time) bool {
	s.lastErr = &upstreamError{addr: u.addr, err: err}
	return s.more(now) && (idem || isDialError(err))
}

// afterStatus reports whether an answer with this status may be dropped
// and the request tried elsewhere: a 502/503/504 to an idempotent request
// without a body. The upstream answered, so it is not counted as failed
// (an app may answer 503 on purpose). The caller retries only if the
// balancer has an upstream left.
func (s *retryState) afterStatus(status int, idem, hasBody bool, now time.Time) bool {
	return retryStatus(status) && idem && !hasBody && now.Before(s.deadline) && s.attempt < s.attempts
}

// retriedStatus records that an answer was dropped for a retry.
func (s *retryState) retriedStatus() { s.lastErr = nil }

// giveUp is the error when no upstream is left: the last attempt's, or
// errNoUpstream when there was none.
func (s *retryState) giveUp() error {
	if s.lastErr != nil {
		return s.lastErr
	}
	return errNoUpstream
}

// errClientGone: the client closed its connection while the upstream
// was thinking. As on the net/http path (a cancelled context), the
// upstream request is abandoned, the upstream is not blamed, and the
// access log says 499.
var errClientGone = errors.New("client went away")

// clientBodyError is a failure to read the client's request body.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// statusClientGone is nginx's code for a client that left before the
// answer; only the access log sees it.
const statusClientGone = 499

// errorStatus maps a failed proxy request to the status the client gets,
// for both engines: 499 when the client left, 400 or 413 when its body
// broke, 504 after a timeout, else 502.
func errorStatus(err error, clientGone bool) int {
	if clientGone || errors.Is(err, errClientGone) {
		return statusClientGone
	}
	var be *clientBodyError
	if errors.As(err, &be) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusBadRequest
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}
