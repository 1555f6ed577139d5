package server

import (
	"io"
	"log/slog"
	"strings"
)

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

// announceListener logs the line the SPEC promises for each listener. The
// message keeps the exact text "portico: serving URL (site NAME)" in text
// and JSON forms alike (scripts grep it); url and site repeat it as fields.
func (s *Server) announceListener(l *listener, t *Tree) {
	u := listenURL(l.ln.Addr(), l.tls)
	sites := strings.Join(t.siteNames(l.key), ", ")
	s.opts.Announce.Info("portico: serving "+u+" (site "+sites+")", "url", u, "site", sites)
}
