package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// healthLoop runs the active checks until ctx is cancelled (Close).
func (h *Handler) healthLoop(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.health.Interval.D())
	defer t.Stop()
	for {
		h.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkAll checks every upstream at once and waits for the answers.
func (h *Handler) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range h.pool.ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.check(ctx, u)
			if ctx.Err() != nil {
				return // shutting down: the result means nothing
			}
			if err != nil {
				if !u.activeDown.Swap(true) {
					h.log.Warn("upstream down", "upstream", u.addr, "reason", "health check: "+err.Error())
				}
			} else if u.activeDown.Swap(false) {
				h.log.Info("upstream up", "upstream", u.addr, "reason", "health check passed")
			}
		}()
	}
	wg.Wait()
}

// check GETs the health path of u; nil means healthy.
func (h *Handler) check(ctx context.Context, u *upstream) error {
	ctx, cancel := context.WithTimeout(ctx, h.health.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.scheme+"://"+u.host+h.health.Path, nil)
	if err != nil {
		return err
	}
	req.Host = u.hostHeader
	req.Header.Set("User-Agent", "portico-health-check")
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	want := h.health.Expect
	if (want == 0 && (resp.StatusCode < 200 || resp.StatusCode > 299)) || (want != 0 && resp.StatusCode != want) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
