package cgi

import "portico/internal/status"

// Status reports the scripts running now and the max_processes bound,
// for the status page.
func (h *Handler) Status() status.CGI {
	return status.CGI{Running: len(h.sem), Max: cap(h.sem)}
}
