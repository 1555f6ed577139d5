// Package admin serves portico's admin endpoints: GET /healthz, GET /metrics
// (Prometheus), POST /reload and POST /cache/purge. It has no
// authentication: bind it to a loopback address.
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"portico/internal/cache"
)

// Options are what the admin endpoints act on.
type Options struct {
	Logger  *slog.Logger
	Metrics http.Handler
	// Reload reloads the config file; nil when there is none (quick mode).
	Reload func() error
	// Caches returns the response caches of the live config.
	Caches func() []*cache.Handler
}

// New returns the admin handler.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if opts.Reload == nil {
			writeJSON(w, http.StatusNotImplemented, map[string]any{"error": "no config file to reload (quick mode)"})
			return
		}
		if err := opts.Reload(); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"reloaded": true})
	})
	mux.HandleFunc("POST /cache/purge", func(w http.ResponseWriter, r *http.Request) {
		target, prefix, err := purgeRequest(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		var caches []*cache.Handler
		if opts.Caches != nil {
			caches = opts.Caches()
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		total := 0
		for _, c := range caches {
			n, err := c.Purge(ctx, target, prefix)
			if err != nil {
				opts.Logger.Warn("cache purge", "url", target, "err", err)
				writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "purged": total + n})
				return
			}
			total += n
		}
		opts.Logger.Info("cache purged", "url", target, "prefix", prefix, "entries", total)
		writeJSON(w, http.StatusOK, map[string]any{"purged": total})
	})
	return mux
}

type purgeBody struct {
	URL    string `json:"url"`
	Prefix bool   `json:"prefix"`
}

// purgeRequest reads the URL to purge from the query (?url=...&prefix=1),
// a form body, or a JSON body {"url": "...", "prefix": true}.
func purgeRequest(r *http.Request) (string, bool, error) {
	if r.Header.Get("Content-Type") == "application/json" {
		var b purgeBody
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&b); err != nil {
			return "", false, err
		}
		if b.URL == "" {
			return "", false, errMissingURL
		}
		return b.URL, b.Prefix, nil
	}
	if err := r.ParseForm(); err != nil {
		return "", false, err
	}
	u := r.Form.Get("url")
	if u == "" {
		return "", false, errMissingURL
	}
	prefix, _ := strconv.ParseBool(r.Form.Get("prefix"))
	return u, prefix, nil
}

type adminError string

func (e adminError) Error() string { return string(e) }

const errMissingURL = adminError(`missing "url": the absolute URL (or URL prefix with prefix=true) to purge`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
