package proxy

import (
	"net/netip"

	"portico/internal/fastpath"
)

// clientKey is what ip_hash hashes: the client address as clientip
// decides it (X-Forwarded-For through trusted proxies), as a RemoteAddr
// ("ip:port"). Other policies do not look at it, so it is not computed
// for them.
func (h *Handler) clientKey(remoteAddr string, xff []string) string {
	if h.bal.policy != balanceIPHash || !h.clients.HasTrusted() {
		return remoteAddr
	}
	a, fromPeer := h.clients.Client(remoteAddr, xff)
	if fromPeer {
		return remoteAddr
	}
	return netip.AddrPortFrom(a, 0).String()
}

// fastClientKey is clientKey on the fast path, reading X-Forwarded-For
// from the raw header lines.
func (h *Handler) fastClientKey(req *fastpath.Request, w *fastpath.ResponseWriter) string {
	if h.bal.policy != balanceIPHash || !h.clients.HasTrusted() {
		return req.RemoteAddr
	}
	var buf [8]string // more X-Forwarded-For fields: the last 8 count
	return h.clientKey(req.RemoteAddr, w.RequestValues("X-Forwarded-For", buf[:0]))
}
