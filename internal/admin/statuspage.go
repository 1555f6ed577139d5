package admin

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"portico/internal/status"
)

//go:embed status.html
var statusHTML string

// statusTemplate renders the status page: plain HTML and CSS, no
// JavaScript, one column on a phone. html/template escapes every value
// (site names, hosts and paths come from the config, errors from reloads).
var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"bytes":    humanBytes,
	"duration": func(s int64) string { return (time.Duration(s) * time.Second).String() },
	"percent":  func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(statusHTML))

// serveStatus answers GET / with the status page, or its data as JSON
// with ?format=json.
func serveStatus(snapshot func() status.Snapshot, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := snapshot()
		snap.Version = version
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Query().Get("format") {
		case "json":
			writeJSON(w, http.StatusOK, snap)
		case "", "html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
			if err := statusTemplate.Execute(w, snap); err != nil {
				// Headers are gone; the page is cut short. Only a
				// template bug gets here: the data is plain values.
				return
			}
		default:
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": `format must be "json" or "html"`})
		}
	}
}

func humanBytes(n int64) string {
	if n < 0 {
		return "n/a"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
