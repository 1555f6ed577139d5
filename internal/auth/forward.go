package auth

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"time"

	"portico/internal/config"
	"portico/internal/errorpage"
)

// Forward is the forward_auth handler: before next runs, the request's
// method, URI and header fields (never its body) go to an auth server.
// A 2xx answer lets the request through, with the copy_headers fields of
// the answer put into it; any other answer (a 401, a 302 to a login
// page) goes to the client as it is; an auth server that cannot be
// reached is a 503, never an open door.
//
// It is a plain http.Handler without a fast path: a route with
// forward_auth is served by net/http. Its subrequest is a network round
// trip per request anyway.
type Forward struct {
	next    http.Handler
	url     *url.URL
	copy    []string // canonical names
	client  *http.Client
	timeout time.Duration
	opts    Options
}

// maxAuthBody bounds the body of an auth server's refusal relayed to the
// client.
const maxAuthBody = 1 << 20

// NewForward builds the handler from its config section (validated by
// config) around next.
func NewForward(cfg config.ForwardAuth, next http.Handler, opts Options) (*Forward, error) {
	opts.fill()
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("forward_auth url %q: want http:// or https://", cfg.URL)
	}
	f := &Forward{next: next, url: u, timeout: cfg.Timeout.D(), opts: opts}
	if f.timeout <= 0 {
		f.timeout = config.DefaultForwardAuthTimeout
	}
	for _, h := range cfg.CopyHeaders {
		f.copy = append(f.copy, textproto.CanonicalMIMEHeaderKey(h))
	}
	tr := &http.Transport{
		Proxy:               nil, // never through an environment proxy
		DialContext:         (&net.Dialer{Timeout: f.timeout}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	f.client = &http.Client{
		Transport: tr,
		// A redirect is an answer for the client (to a login page), not
		// one for portico to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f, nil
}

// Close releases the idle connections to the auth server.
func (f *Forward) Close(context.Context) error {
	f.client.CloseIdleConnections()
	return nil
}

// hopByHop fields are not passed to the auth server nor back.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Proxy-Authenticate", "Proxy-Authorization"}

func (f *Forward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout)
	defer cancel()
	sub, err := http.NewRequestWithContext(ctx, r.Method, f.url.String(), nil)
	if err != nil {
		f.unavailable(w, r, err)
		return
	}
	for k, v := range r.Header {
		sub.Header[k] = v
	}
	for _, k := range hopByHop {
		sub.Header.Del(k)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c := clientString(f.opts.Clients.FromHTTP(r))
	sub.Header.Set("X-Forwarded-Method", r.Method)
	sub.Header.Set("X-Forwarded-Proto", scheme)
	sub.Header.Set("X-Forwarded-Host", r.Host)
	sub.Header.Set("X-Forwarded-Uri", r.RequestURI)
	sub.Header.Set("X-Forwarded-For", c)
	sub.Header.Set("X-Original-Url", scheme+"://"+r.Host+r.RequestURI)
	sub.Header.Set("X-Original-Method", r.Method)
	resp, err := f.client.Do(sub)
	if err != nil {
		f.unavailable(w, r, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The fields come from the auth server or not at all: a client
		// must not be able to send its own Remote-User.
		for _, k := range f.copy {
			if v := resp.Header.Values(k); len(v) > 0 {
				r.Header[k] = append([]string(nil), v...)
			} else {
				delete(r.Header, k)
			}
		}
		f.next.ServeHTTP(w, r)
		return
	}
	f.opts.Counters.ForwardDenied.Add(1)
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	for _, k := range hopByHop {
		h.Del(k)
	}
	body := io.LimitReader(resp.Body, maxAuthBody)
	if resp.ContentLength >= 0 && resp.ContentLength <= maxAuthBody {
		h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, body)
	}
}

// unavailable answers 503 when the auth server cannot say yes or no.
func (f *Forward) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	f.opts.Counters.ForwardErrors.Add(1)
	f.opts.Logger.Error("forward auth unavailable", "url", f.url.String(), "err", err)
	w.Header().Set("Retry-After", "5")
	errorpage.WriteMessage(w, r, http.StatusServiceUnavailable, "The authentication service is not available.")
}
