package fastcgi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
	"portico/internal/enginetest"
)

// newFastSetup serves a fastcgi handler for the route prefix "/app" over
// root, talking to fake, behind both engines (enginetest), with a site
// header.
func newFastSetup(t *testing.T, fake *fakeServer, root string, edit func(*config.FastCGI)) (*enginetest.Fronts, *Handler, *enginetest.SyncBuffer) {
	t.Helper()
	cfg := config.FastCGI{Upstream: fake.addr, Root: root}
	cfg.SetDefaults()
	cfg.ReadTimeout = config.Duration(5 * time.Second)
	if edit != nil {
		edit(&cfg)
	}
	logs := &enginetest.SyncBuffer{}
	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "static %s", r.URL.Path)
	})
	h, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Prefix: "/app", Files: files})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return enginetest.Start(t, h, [][2]string{{"X-Site", "1"}, {"Content-Type", "site/default"}}), h, logs
}

// fastScripts answers by PATH_INFO: the responses whose relaying the
// engines must agree on.
func fastScripts(req *fakeReq) error {
	switch req.params["PATH_INFO"] {
	case "/created":
		return req.respond("Status: 201 Created\r\nContent-Type: application/json\r\nX-A: 1\r\nX-A: 2\r\nConnection: close\r\n\r\n{}")
	case "/odd":
		return req.respond("Status: 299\r\nContent-Type: text/plain\r\n\r\nodd")
	case "/redirect":
		return req.respond("Location: /elsewhere\r\n\r\n")
	case "/notype":
		return req.respond("Status: 200\r\n\r\n<html>")
	case "/nocontent":
		return req.respond("Status: 204\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n")
	case "/notmodified":
		return req.respond("Status: 304\r\nContent-Type: text/plain\r\nETag: \"x\"\r\n\r\n")
	case "/declared":
		return req.respond("Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
	case "/small":
		return req.respond("Content-Type: text/plain\r\n\r\n" + strings.Repeat("s", 2000))
	case "/large":
		return req.respond("Content-Type: text/plain\r\n\r\n" + strings.Repeat("0123456789", 10000))
	case "/empty-body":
		return req.respond("Content-Type: text/plain\r\n\r\n")
	case "/bad":
		return req.respond("this is not a header\r\n\r\n")
	case "/end":
		return req.end()
	case "/stderr":
		if err := req.stderr("PHP Warning: oops\n"); err != nil {
			return err
		}
		return req.respond("Content-Type: text/plain\r\n\r\nok")
	}
	return echoParams(req)
}

// TestFastSameAnswers: a script on the fast path answers what it answers
// on net/http's path: status, fields, framing and body.
func TestFastSameAnswers(t *testing.T) {
	fake := newFakeServer(t, fastScripts)
	f, _, _ := newFastSetup(t, fake, testRoot(t), func(c *config.FastCGI) { c.Env = map[string]string{"APP_ENV": "test"} })
	params := "p=HTTP_PROXY&p=HTTP_X_USER&p=HTTP_X_MULTI&p=HTTP_COOKIE&p=HTTP_CACHE_CONTROL&p=HTTP_PRAGMA" +
		"&p=QUERY_STRING&p=REQUEST_METHOD&p=REQUEST_URI&p=SCRIPT_NAME&p=SCRIPT_FILENAME&p=PATH_INFO&p=DOCUMENT_URI" +
		"&p=SERVER_NAME&p=SERVER_PROTOCOL&p=REMOTE_ADDR&p=SERVER_ADDR&p=HTTP_HOST&p=CONTENT_LENGTH&p=CONTENT_TYPE" +
		"&p=AUTH_TYPE&p=HTTP_AUTHORIZATION&p=APP_ENV&p=HTTP_X_REQUEST_ID&p=HTTP_CONNECTION&p=HTTPS&p=REQUEST_SCHEME"
	f.Same(t, true,
		enginetest.GET("/app/hello/world?"+params, "example.test:8080",
			"Proxy: http://evil.test:1", "X_User: spoofed", "X-User: real", "X-Multi: a",
			"x-multi: b", "Cookie: a=1", "Cookie: b=2", "Pragma: no-cache", "Authorization: Basic eA==",
			"X-Request-Id: abc", "Content-Length: 0", "Content-Type: text/x"),
		enginetest.GET("/app/a.php/pi%20x?"+params, "[::1]"),
		enginetest.GET("/app/sub/?"+params, "h", "Pragma: no-cache", "Cache-Control: max-age=0", "Connection: keep-alive"),
		"HEAD /app/hello?"+params+" HTTP/1.1\r\nHost: h\r\n\r\n",
	)
	var raws []string
	for _, p := range []string{"created", "odd", "redirect", "notype", "nocontent", "notmodified", "declared",
		"small", "large", "empty-body", "bad", "end", "stderr"} {
		raws = append(raws, enginetest.GET("/app/a.php/"+p, "h"), "HEAD /app/a.php/"+p+" HTTP/1.1\r\nHost: h\r\n\r\n")
	}
	raws = append(raws,
		enginetest.GET("/app/missing.php", "h"),
		enginetest.GET("/app/.env", "h", "Accept: text/html"),
		enginetest.GET("/app/X.PHP", "h"),
	)
	f.Same(t, true, raws...)
	// HTTP/1.0, a folder's redirect and files stay on net/http's path.
	for _, raw := range []string{
		"GET /app/a.php HTTP/1.0\r\n\r\n",
		enginetest.GET("/app/sub", "h"),
		enginetest.GET("/app/style.css", "h"),
	} {
		f.Declines(t, raw)
	}
}

// TestFastEndpoints: the connection's parameters on the fast path are
// those of the connection the request came on.
func TestFastEndpoints(t *testing.T) {
	fake := newFakeServer(t, echoParams)
	f, _, _ := newFastSetup(t, fake, testRoot(t), nil)
	res := enginetest.Do(t, f.Fast, enginetest.GET("/app/a.php?p=SERVER_PORT&p=SERVER_ADDR&p=REMOTE_ADDR&p=REMOTE_PORT&p=SERVER_NAME", "name.test:1"))
	_, port, _ := net.SplitHostPort(f.Fast)
	for _, want := range []string{"SERVER_PORT=" + port + "\n", "SERVER_ADDR=127.0.0.1\n", "REMOTE_ADDR=127.0.0.1\n", "SERVER_NAME=name.test\n"} {
		if !strings.Contains(res[0].Body, want) {
			t.Errorf("params lack %q:\n%s", want, res[0].Body)
		}
	}
	if strings.Contains(res[0].Body, "REMOTE_PORT=<unset>") {
		t.Errorf("no REMOTE_PORT:\n%s", res[0].Body)
	}
}

// TestFastStreamed: what the script flushes reaches the client on the
// fast path before the script goes on.
func TestFastStreamed(t *testing.T) {
	next := make(chan struct{})
	fake := newFakeServer(t, chunksAfterEach(next))
	f, _, _ := newFastSetup(t, fake, testRoot(t), nil)
	c, err := net.Dial("tcp", f.Fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, enginetest.GET("/app/a.php", "h"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("streamed response framed %v, want chunked", resp.TransferEncoding)
	}
	buf := make([]byte, 7)
	for i := 0; i < 3; i++ {
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != fmt.Sprintf("chunk%d\n", i) {
			t.Fatalf("piece %d: %q %v", i, buf, err)
		}
		next <- struct{}{}
	}
	if rest, err := io.ReadAll(resp.Body); len(rest) != 0 || err != nil {
		t.Errorf("trailing %q %v", rest, err)
	}
	if f.Served.Load() != 1 {
		t.Errorf("fast path served %d requests, want 1", f.Served.Load())
	}
}

// TestFastClientGone: a client that hangs up while the script runs frees
// its connection to the responder within clientPoll, closed, never
// reused.
func TestFastClientGone(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	fake := newFakeServer(t, func(req *fakeReq) error {
		if req.params["QUERY_STRING"] == "slow" {
			select { // a script that runs on and on
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return errCloseConn
		}
		return req.respond("Content-Type: text/plain\r\n\r\nok")
	})
	f, _, _ := newFastSetup(t, fake, testRoot(t), func(c *config.FastCGI) {
		c.MaxConns = 1
		c.ConnectTimeout = config.Duration(8 * time.Second)
	})
	c, err := net.Dial("tcp", f.Fast)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, enginetest.GET("/app/a.php?slow", "h"))
	time.Sleep(100 * time.Millisecond)
	c.Close()
	start := time.Now()
	res := enginetest.Do(t, f.Fast, enginetest.GET("/app/a.php", "h"))
	if res[0].Body != "ok" {
		t.Errorf("after a client hung up: %d %q", res[0].Status, res[0].Body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the next request waited %v for the abandoned connection", d)
	}
	if n := fake.conns.Load(); n != 2 {
		t.Errorf("%d connections to the responder, want 2 (the abandoned one closed)", n)
	}
}

// TestFastRetryDropped: php-fpm closing a kept connection costs a fast
// path request nothing either.
func TestFastRetryDropped(t *testing.T) {
	fake := newFakeServer(t, func(req *fakeReq) error {
		if err := req.respond("Content-Type: text/plain\r\n\r\nok"); err != nil {
			return err
		}
		return errCloseConn
	})
	f, _, logs := newFastSetup(t, fake, testRoot(t), nil)
	for i := 0; i < 10; i++ {
		if res := enginetest.Do(t, f.Fast, enginetest.GET("/app/a.php", "h")); res[0].Status != 200 || res[0].Body != "ok" {
			t.Fatalf("request %d: %d %q", i, res[0].Status, res[0].Body)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
}

// TestFastFailures: errors before an answer are the error pages of
// net/http's path, with their log lines.
func TestFastFailures(t *testing.T) {
	fake := newFakeServer(t, echoParams)
	fake.ln.Close()
	f, _, logs := newFastSetup(t, fake, testRoot(t), nil)
	res := f.Same(t, true, enginetest.GET("/app/a.php", "h"))
	if res[0].Status != http.StatusBadGateway {
		t.Errorf("php-fpm down: %d, want 502", res[0].Status)
	}
	if !strings.Contains(logs.String(), "cannot reach the responder") {
		t.Errorf("no log line:\n%s", logs.String())
	}
}
