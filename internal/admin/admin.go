// Package admin serves portico's admin endpoints: GET / (the status page,
// HTML or ?format=json), GET /healthz, GET /metrics (Prometheus), POST
// /reload and POST /cache/purge.
//
// Threat model: the admin address is on loopback (config refuses any
// other unless admin_allow_remote is set together with an admin_token),
// but a browser on the same machine reaches loopback too. guard stops
// the two ways a web page the operator opens could use it: DNS rebinding
// (a name of the attacker's that resolves to 127.0.0.1 lets its scripts
// read /metrics: the Host header must be an IP address, localhost or the
// configured admin host) and cross-site requests (a form or a no-cors
// fetch POSTs with a "simple" content type and needs no preflight: a
// state-changing request must say Content-Type: application/json, which
// a page can only send after a CORS preflight portico never grants, and
// must not carry a foreign Origin). With a token, every request needs
// Authorization: Bearer TOKEN.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"portico/internal/cache"
	"portico/internal/status"
)

// Options are what the admin endpoints act on.
type Options struct {
	Logger  *slog.Logger
	Metrics http.Handler
	// Reload reloads the config file; nil when there is none (quick mode).
	Reload func() error
	// Caches returns the response caches of the live config.
	Caches func() []*cache.Handler
	// Addr is the configured admin address ("127.0.0.1:2019"): its host
	// is accepted in the Host header beside IP addresses and localhost.
	Addr string
	// Token, if set, is required of every request as a bearer token.
	Token string
	// Status returns the state the status page (GET /) shows; nil: no page.
	Status func() status.Snapshot
	// Version is shown on the status page.
	Version string
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
	if opts.Status != nil {
		mux.HandleFunc("GET /{$}", serveStatus(opts.Status, opts.Version))
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
		pr, err := purgeRequest(r)
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
			var n int
			var err error
			if pr.Tag != "" {
				n, err = c.PurgeTag(ctx, pr.Tag)
			} else {
				n, err = c.Purge(ctx, pr.URL, pr.Prefix)
			}
			if err != nil {
				opts.Logger.Warn("cache purge", "url", pr.URL, "tag", pr.Tag, "err", err)
				writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "purged": total + n})
				return
			}
			total += n
		}
		opts.Logger.Info("cache purged", "url", pr.URL, "prefix", pr.Prefix, "tag", pr.Tag, "entries", total)
		writeJSON(w, http.StatusOK, map[string]any{"purged": total})
	})
	host, _, _ := net.SplitHostPort(opts.Addr)
	return &guard{next: mux, host: strings.ToLower(host), token: opts.Token, log: opts.Logger}
}

// guard refuses what a web page could send to the admin address (see the
// package doc).
type guard struct {
	next  http.Handler
	host  string // the configured admin host, lower case
	token string
	log   *slog.Logger
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r.Host) {
		g.refuse(w, r, http.StatusMisdirectedRequest, "the Host header must name the admin address (an IP address or localhost)")
		return
	}
	if g.token != "" {
		auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(auth), []byte(g.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portico admin"`)
			g.refuse(w, r, http.StatusUnauthorized, "a valid admin token is required (Authorization: Bearer TOKEN)")
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if o := r.Header.Get("Origin"); o != "" && !g.originAllowed(o) {
			g.refuse(w, r, http.StatusForbidden, "cross-origin requests are refused")
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			g.refuse(w, r, http.StatusUnsupportedMediaType, "state-changing requests must send Content-Type: application/json")
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

func (g *guard) refuse(w http.ResponseWriter, r *http.Request, status int, why string) {
	g.log.Warn("admin: request refused", "method", r.Method, "path", r.URL.Path, "host", r.Host,
		"origin", r.Header.Get("Origin"), "remote", r.RemoteAddr, "status", status)
	writeJSON(w, status, map[string]any{"error": why})
}

// hostAllowed reports whether a Host header value names this admin
// address: an IP literal (no name an attacker could rebind), localhost, or
// the configured host.
func (g *guard) hostAllowed(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return h == "localhost" || h == g.host
}

// originAllowed reports whether an Origin is the admin address's own (a
// page served by the admin address itself).
func (g *guard) originAllowed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	return g.hostAllowed(u.Host)
}

// purgeBody is what to purge: a URL (or URL prefix), or a tag.
type purgeBody struct {
	URL    string `json:"url"`
	Prefix bool   `json:"prefix"`
	Tag    string `json:"tag"`
}

// purgeRequest reads what to purge from the query (?url=...&prefix=1 or
// ?tag=...) or a JSON body {"url": "...", "prefix": true} or
// {"tag": "..."}. (Form bodies are not read: their content type is one a
// cross-site page may send; guard refuses it.)
func purgeRequest(r *http.Request) (purgeBody, error) {
	q := r.URL.Query()
	if u := q.Get("url"); u != "" {
		prefix, _ := strconv.ParseBool(q.Get("prefix"))
		return purgeBody{URL: u, Prefix: prefix}, nil
	}
	if t := q.Get("tag"); t != "" {
		return purgeBody{Tag: t}, nil
	}
	var b purgeBody
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&b); err != nil {
		if errors.Is(err, io.EOF) {
			return b, errMissingURL
		}
		return b, err
	}
	switch {
	case b.URL == "" && b.Tag == "":
		return b, errMissingURL
	case b.URL != "" && b.Tag != "":
		return b, adminError(`give "url" or "tag", not both`)
	}
	return b, nil
}

type adminError string

func (e adminError) Error() string { return string(e) }

const errMissingURL = adminError(`missing "url" or "tag": the absolute URL (or URL prefix with prefix=true), or the tag, to purge`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
