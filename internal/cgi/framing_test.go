package cgi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"portico/internal/enginetest"
	"portico/internal/fastpath"
)

// netHTTPOnly puts a handler without a fast path behind enginetest's two
// engines: on the fast engine every request is handed over to net/http
// with the connection's buffered bytes, the way portico serves CGI routes.
type netHTTPOnly struct{ http.Handler }

func (netHTTPOnly) ServeFast(*fastpath.Request, *fastpath.ResponseWriter) bool { return false }

// pipelined sends raw (several requests at once) on a new connection and
// returns everything the server sent until it closed the connection.
func pipelined(t *testing.T, addr, raw string) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(8 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading until close: %v (got %q)", err, b)
	}
	return string(b), time.Since(start)
}

// TestCGIFramingPastContentLength: a script that writes more body than its
// own Content-Length (in one write, or in a second write after a pause)
// gets exactly Content-Length bytes to the client, a log line naming it,
// and the connection closed after the response, on both engines: the
// excess is never read as the answer to the pipelined request behind it.
// A script that writes less than its Content-Length never leaves the
// client waiting: the connection closes after what it wrote.
func TestCGIFramingPastContentLength(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "over.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\nhelloHTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\n\\r\\nforged'\n", 0o755)
	writeFile(t, root, "over2.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\nhello'\nsleep 0.2\nprintf 'HTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\n\\r\\nforged'\n", 0o755)
	writeFile(t, root, "short.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 100\\r\\n\\r\\nabc'\n", 0o755)
	writeFile(t, root, "ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nsecond'\n", 0o755)

	logs := &enginetest.SyncBuffer{}
	cfg := testCfg(root)
	h, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Prefix: "/cgi-bin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeHandler(t, h) })
	fronts := enginetest.Start(t, netHTTPOnly{h}, nil)

	second := enginetest.GET("/cgi-bin/ok.sh", "x")
	for _, engine := range []struct{ name, addr string }{{"fast", fronts.Fast}, {"net/http", fronts.Normal}} {
		for _, script := range []string{"over.sh", "over2.sh"} {
			t.Run(engine.name+"/"+script, func(t *testing.T) {
				before := strings.Count(logs.String(), "script=/cgi-bin/"+script)
				got, _ := pipelined(t, engine.addr, enginetest.GET("/cgi-bin/"+script, "x")+second)
				br := bufio.NewReader(strings.NewReader(got))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("no response: %v in %q", err, got)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil || string(body) != "hello" || resp.ContentLength != 5 {
					t.Fatalf("body %q (Content-Length %d, err %v), want exactly \"hello\"", body, resp.ContentLength, err)
				}
				if rest, _ := io.ReadAll(br); len(rest) != 0 {
					t.Errorf("bytes after the response on the same connection: %q", rest)
				}
				if strings.Contains(got, "forged") {
					t.Errorf("the script's excess reached the client: %q", got)
				}
				if n := strings.Count(logs.String(), "script=/cgi-bin/"+script); n <= before || !strings.Contains(logs.String(), "more body than its Content-Length") {
					t.Errorf("no error log line for %s:\n%s", script, logs)
				}
			})
		}
		t.Run(engine.name+"/short", func(t *testing.T) {
			got, took := pipelined(t, engine.addr, enginetest.GET("/cgi-bin/short.sh", "x")+second)
			if !strings.HasSuffix(got, "\r\n\r\nabc") || strings.Contains(got, "second") {
				t.Errorf("got %q, want the short response and then the connection closed", got)
			}
			if took > 3*time.Second {
				t.Errorf("connection closed after %s", took)
			}
			if !strings.Contains(logs.String(), "less body than its Content-Length") {
				t.Errorf("no error log line for short.sh:\n%s", logs)
			}
		})
		// The connection stays reusable when the script keeps its framing.
		t.Run(engine.name+"/keepalive", func(t *testing.T) {
			res := enginetest.Do(t, engine.addr, enginetest.GET("/cgi-bin/ok.sh", "x"), second)
			if len(res) != 2 || res[1].Body != "second" {
				t.Errorf("got %+v", res)
			}
		})
	}
}

// closeHandler closes h at the end of a test, failing it if scripts were
// still running past a few seconds.
func closeHandler(t *testing.T, h *Handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCGIFramingHTTP2: over HTTP/2 a script's excess is dropped the same
// way (the stream ends at Content-Length) and a short body resets the
// stream, so the client sees an error instead of waiting.
func TestCGIFramingHTTP2(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "over.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\nhello, and more'\n", 0o755)
	writeFile(t, root, "short.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 100\\r\\n\\r\\nabc'\n", 0o755)
	logs := &enginetest.SyncBuffer{}
	h, err := New(testCfg(root), Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Prefix: "/cgi-bin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeHandler(t, h) })
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := srv.Client()
	c.Timeout = 10 * time.Second

	resp, err := c.Get(srv.URL + "/cgi-bin/over.sh")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || err != nil || string(body) != "hello" {
		t.Errorf("over.sh: %s body %q err %v, want HTTP/2 and exactly \"hello\"", resp.Proto, body, err)
	}

	start := time.Now()
	resp, err = c.Get(srv.URL + "/cgi-bin/short.sh")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("short.sh: read a complete response, want an error (the body is short of its Content-Length)")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("short.sh: the client waited %s", took)
	}
	if !strings.Contains(logs.String(), "more body than its Content-Length") || !strings.Contains(logs.String(), "less body than its Content-Length") {
		t.Errorf("log lines missing:\n%s", logs)
	}
}
