package proxy

import (
	"bytes"
	"net/netip"
	"unsafe"

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
	var buf [8]string
	xff := buf[:0]
	raw := w.RawHeader()
	const name = "X-Forwarded-For"
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n')
		if end < 0 {
			end = len(raw)
		}
		line := raw[:end]
		raw = raw[min(end+1, len(raw)):]
		if len(line) <= len(name) || line[len(name)] != ':' || !fastpath.EqualFold(line[:len(name)], name) {
			continue
		}
		v := bytes.Trim(line[len(name)+1:], " \t\r")
		if len(xff) == cap(xff) {
			copy(xff, xff[1:]) // keep the last ones: read from the right
			xff = xff[:len(xff)-1]
		}
		xff = append(xff, unsafe.String(unsafe.SliceData(v), len(v)))
	}
	return h.clientKey(req.RemoteAddr, xff)
}
