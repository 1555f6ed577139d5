package static

import (
	"bufio"
	"net"
	"net/http"
)

// The quick-mode trap (`serve --spa --proxy URL`): a browser navigation to
// a path with no file may be one the upstream serves (an OAuth callback,
// /admin), so the SPA's index must not shadow it. With a Fallback, a
// navigation miss goes to the Fallback first, and only a 404 from it is
// replaced by the SPA's index.html; any other answer (200, a redirect,
// 401, a stream) reaches the client as the upstream sent it.

// spaAfterFallback serves a navigation miss: the Fallback's answer, or
// index (at rel) when the Fallback says 404.
func (h *Handler) spaAfterFallback(w http.ResponseWriter, r *http.Request, index *node, rel string) {
	c := &notFoundCatcher{w: w, header: http.Header{}}
	h.fallback.ServeHTTP(c, r)
	if c.caught {
		h.announceAnswer(w, rel)
		h.serveFile(w, r, index, rel, true)
	}
}

// notFoundCatcher passes a response through unless its status is 404, in
// which case it swallows it (header and body) and records that it did.
// The header map is its own until the status is known, so a caught 404
// leaves nothing behind on the real writer.
type notFoundCatcher struct {
	w      http.ResponseWriter
	header http.Header
	caught bool // the status was 404: nothing was sent
	wrote  bool // a final status went through
}

func (c *notFoundCatcher) Header() http.Header {
	if c.wrote {
		return c.w.Header()
	}
	return c.header
}

func (c *notFoundCatcher) WriteHeader(code int) {
	if c.wrote || c.caught {
		return
	}
	if code == http.StatusNotFound {
		c.caught = true
		return
	}
	dst := c.w.Header()
	for k, v := range c.header {
		dst[k] = v
	}
	if code >= 100 && code < 200 {
		// Interim responses (103 Early Hints) pass at once; the final
		// status is still to come.
		c.w.WriteHeader(code)
		clear(c.header)
		return
	}
	c.wrote = true
	c.w.WriteHeader(code)
}

func (c *notFoundCatcher) Write(p []byte) (int, error) {
	if !c.wrote && !c.caught {
		c.WriteHeader(http.StatusOK)
	}
	if c.caught {
		return len(p), nil
	}
	return c.w.Write(p)
}

// FlushError keeps streaming (SSE) answers streaming.
func (c *notFoundCatcher) FlushError() error {
	if c.caught {
		return nil
	}
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(c.w).Flush()
}

func (c *notFoundCatcher) Flush() { c.FlushError() }

// Hijack keeps upgrades (WebSocket) working: the upstream's 101 went
// through WriteHeader first.
func (c *notFoundCatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(c.w).Hijack()
}

var (
	_ http.Flusher  = (*notFoundCatcher)(nil)
	_ http.Hijacker = (*notFoundCatcher)(nil)
)
