package wsgi

import (
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// warm sends a new worker the configured warm-up request (cfg.Warmup)
// before it takes a client's, so what the app does lazily on its first
// request is done by then. The answer is logged and dropped; a failure
// is logged, and the worker serves anyway (a worker that died is caught
// by the caller).
func (p *Pool) warm(pr *proc, log *slog.Logger) {
	start := time.Now()
	in, err := http.NewRequest(http.MethodGet, "http://localhost"+p.prefix+p.cfg.Warmup, nil)
	if err != nil {
		log.Warn("wsgi: warm-up request", "path", p.cfg.Warmup, "err", err)
		return
	}
	in.RemoteAddr = "127.0.0.1:0"
	in.RequestURI = in.URL.RequestURI()
	in.Header.Set("User-Agent", "portico-warmup")
	var timedOut atomic.Bool
	timer := time.AfterFunc(p.timeout, func() {
		timedOut.Store(true)
		pr.closeConn()
	})
	status, err := p.exchangeDiscard(pr, in)
	timer.Stop()
	if err != nil {
		log.Warn("wsgi: warm-up request failed", "path", p.cfg.Warmup, "err", err)
		if timedOut.Load() {
			// Frozen before its first client: not a worker to hand out.
			pr.kill("warm-up request exceeded timeout " + p.timeout.String())
			waitDone(pr, 5*time.Second)
		}
		return
	}
	if status >= 400 {
		log.Warn("wsgi: warm-up request answered an error", "path", p.cfg.Warmup, "status", status)
		return
	}
	log.Info("wsgi: worker warmed", "path", p.cfg.Warmup, "status", status,
		"took", time.Since(start).Round(time.Millisecond))
}

// exchangeDiscard sends r to pr, reads the answer to its end and drops it;
// it returns the status (500 when the app raised before its response).
func (p *Pool) exchangeDiscard(pr *proc, r *http.Request) (int, error) {
	ex, err := p.send(pr, r, &reqBody{})
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, ex)
	if err != nil && err != errAppCut {
		ex.waitWriter()
		return 0, err
	}
	if serr := ex.settle(); serr != nil {
		return 0, serr
	}
	ex.release()
	if ex.appError {
		return http.StatusInternalServerError, nil
	}
	return ex.status, err
}
