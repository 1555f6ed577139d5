package fastpath

import "net"

// LocalAddr returns the local address of the connection the request being
// served arrived on (net/http's LocalAddrContextKey), nil when there is
// none (a Recorder).
func (w *ResponseWriter) LocalAddr() net.Addr {
	if w.c == nil || w.c.nc == nil {
		return nil
	}
	return w.c.nc.LocalAddr()
}
