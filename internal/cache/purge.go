package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"portico/internal/accessinfo"
)

// serveUnsafe forwards an unsafe request and, when it succeeded,
// invalidates the target URI and the URIs in Location and Content-Location
// of the same origin (RFC 9111 section 4.4).
func (h *Handler) serveUnsafe(w http.ResponseWriter, r *http.Request) {
	h.stats.bypass.Add(1)
	accessinfo.CacheStatus(w, logBypass)
	w.Header()["Cache-Status"] = forwarded("bypass")
	sw := &statusWriter{ResponseWriter: w, strip: h.tagHeader}
	h.next.ServeHTTP(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if sw.status < 200 || sw.status >= 400 {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	h.invalidate(ctx, h.primaryKey(r))
	base := &url.URL{Scheme: schemeOf(r), Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	for _, f := range []string{"Location", "Content-Location"} {
		v := w.Header().Get(f)
		if v == "" {
			continue
		}
		u, err := base.Parse(v)
		if err != nil || u.Scheme != base.Scheme || normHost(u.Host, u.Scheme) != normHost(r.Host, base.Scheme) {
			continue // another origin: not ours to invalidate
		}
		h.invalidate(ctx, h.keyFor(u.Scheme, u.Host, u.EscapedPath(), u.RawQuery))
	}
}

// invalidate deletes key's entry, stamped first so that a fetch of key in
// flight does not store its (older) response afterwards.
func (h *Handler) invalidate(ctx context.Context, key string) {
	h.inv.key(key)
	h.store.Delete(ctx, key)
}

// Purge removes the entry for an absolute URL (all its Vary variants), or
// every entry whose URL starts with it when prefix is true. A URL that is
// only a path ("/api/") matches that path on every host. It returns how
// many stored objects were removed (Vary markers and variants count).
func (h *Handler) Purge(ctx context.Context, rawURL string, prefix bool) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("cache purge: %w", err)
	}
	h.inv.purge() // fetches in flight store nothing they got before the purge
	path := u.EscapedPath()
	if u.Host == "" {
		if !strings.HasPrefix(path, "/") {
			return 0, fmt.Errorf("cache purge: %q: want an absolute URL or a path", rawURL)
		}
		want := path
		if !prefix || u.RawQuery != "" {
			want += "?" + u.RawQuery
		}
		return h.store.Purge(ctx, "", func(k string) bool {
			rest := k
			if i := strings.Index(rest, "://"); i >= 0 {
				rest = rest[i+3:]
			}
			if i := strings.IndexAny(rest, "/?"); i >= 0 {
				rest = rest[i:]
			}
			if prefix {
				return strings.HasPrefix(rest, want)
			}
			return rest == want || strings.HasPrefix(rest, want+"\x00")
		})
	}
	scheme := u.Scheme
	if scheme == "" {
		scheme = "http"
	}
	if prefix {
		k := h.keyFor(scheme, u.Host, path, "")
		k = strings.TrimSuffix(k, "?")
		if u.RawQuery != "" && h.key.Query {
			k += "?" + u.RawQuery
		}
		return h.store.Purge(ctx, k, func(string) bool { return true })
	}
	if path == "" {
		path = "/"
	}
	k := h.keyFor(scheme, u.Host, path, u.RawQuery)
	return h.store.Purge(ctx, k, func(s string) bool {
		return s == k || strings.HasPrefix(s, k+"\x00")
	})
}
