package wsgi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// warm sends a new worker the configured warm-up request (cfg.Warmup)
// before it takes a client's, so what the app does lazily on its first
// request is done by then. The answer is logged and dropped; a failure
// is logged, and the worker serves anyway (a worker that died is caught
// by the caller).
func (p *Pool) warm(pr *proc, log *slog.Logger) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	in, err := http.NewRequest(http.MethodGet, "http://localhost"+p.prefix+p.cfg.Warmup, nil)
	if err != nil {
		log.Warn("wsgi: warm-up request", "path", p.cfg.Warmup, "err", err)
		return
	}
	in.RemoteAddr = "127.0.0.1:0"
	in.RequestURI = in.URL.RequestURI()
	in.Header.Set("User-Agent", "portico-warmup")
	resp, err := pr.transport.RoundTrip(p.outRequest(ctx, in, &reqBody{}))
	if err != nil {
		log.Warn("wsgi: warm-up request failed", "path", p.cfg.Warmup, "err", err)
		if ctx.Err() != nil {
			// Frozen before its first client: not a worker to hand out.
			pr.kill("warm-up request exceeded timeout " + p.timeout.String())
			waitDone(pr, 5*time.Second)
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		log.Warn("wsgi: warm-up request answered an error", "path", p.cfg.Warmup, "status", resp.StatusCode)
		return
	}
	log.Info("wsgi: worker warmed", "path", p.cfg.Warmup, "status", resp.StatusCode,
		"took", time.Since(start).Round(time.Millisecond))
}
