package cgi

import "portico/internal/status"

// Status reports the scripts running now, the max_processes bound and
// the scripts stopped by the timeout so far,
// for the status page.
func (h *Handler) Status() status.CGI {
	return status.CGI{Running: len(h.sem), Max: cap(h.sem), Timeouts: h.timeouts.Load()}
}
