package layer

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"portico/internal/enginetest"
	"portico/internal/fastpath"
)

// testGate denies requests that carry X-Deny (403, with the value in
// X-Why), and consumes Authorization. It counts checks and refunds.
type testGate struct {
	NoHeaderEdits
	checks, refunds atomic.Int64
}

var denyAnswer = &Answer{Status: 403, Header: [][2]string{{"X-Why", "test"}}, Body: "Forbidden\n"}

func (g *testGate) Check(r GateRequest) *Answer {
	g.checks.Add(1)
	if r.Header("X-Deny") != "" || r.Path() == "/deny" {
		return denyAnswer
	}
	return nil
}

func (g *testGate) Refund(GateRequest)          { g.refunds.Add(1) }
func (g *testGate) ConsumesAuthorization() bool { return true }

// authEcho answers with the Authorization field it sees (on the fast
// path: whether the raw header still holds one). /slow is declined by
// its fast path.
type authEcho struct{}

func (authEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := "auth=" + r.Header.Get("Authorization")
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", itoa(len(body)))
	io.WriteString(w, body)
}

func (authEcho) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	if req.Path == "/slow" {
		return false
	}
	body := "auth=" + req.Authorization
	if bytes.Contains(bytes.ToLower(w.RawHeader()), []byte("authorization:")) {
		body += " (raw header still has it)"
	}
	w.WriteHeader(200)
	w.AddHeader("Content-Type", "text/plain")
	w.AddHeader("Content-Length", strconv.Itoa(len(body)))
	w.Write([]byte(body))
	return true
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestGateBothEngines: a gate's answer is the same whole response on
// both engines, a passed request keeps the fast path, and the handler
// never sees a consumed Authorization field.
func TestGateBothEngines(t *testing.T) {
	g := &testGate{}
	h := Chain(authEcho{}, g, NewHeaderRules(testRules)).(*chained)
	f := enginetest.Start(t, h, [][2]string{{"X-Site", "s"}})
	res := f.Same(t, true, enginetest.GET("/x", "x", "X-Deny: 1"))
	if res[0].Status != 403 || res[0].Header.Get("X-Why") != "test" || res[0].Body != "Forbidden\n" || res[0].Header.Get("X-Site") != "s" {
		t.Errorf("denied: %+v", res[0])
	}
	res = f.Same(t, true, "HEAD /deny HTTP/1.1\r\nHost: x\r\n\r\n")
	if res[0].Status != 403 || res[0].Body != "" {
		t.Errorf("denied HEAD: %+v", res[0])
	}
	res = f.Same(t, true, enginetest.GET("/ok", "x", "Authorization: Basic YTpi"))
	if res[0].Status != 200 || res[0].Body != "auth=" || res[0].Header.Get("X-Every") != "1" {
		t.Errorf("passed: %+v, want 200 without the credential and with the rules' fields", res[0])
	}
}

// TestGateRefundOnDecline: a request the gate let through on the fast
// path but the handler declined is refunded once and checked again by
// net/http.
func TestGateRefundOnDecline(t *testing.T) {
	g := &testGate{}
	h := Chain(authEcho{}, g).(*chained)
	f := enginetest.Start(t, h, nil)
	r := f.Declines(t, enginetest.GET("/slow", "x", "Authorization: Basic YTpi"))
	if r.Status != 200 || r.Body != "auth=" {
		t.Errorf("declined request: %+v", r)
	}
	if c, rf := g.checks.Load(), g.refunds.Load(); c != 2 || rf != 1 {
		t.Errorf("checks %d, refunds %d; want 2 and 1", c, rf)
	}
}

// TestGateAllowedPathDoesNotAllocate: on both engines, a request the
// gates let through costs no allocation for the gating.
func TestGateAllowedPathDoesNotAllocate(t *testing.T) {
	g := &testGate{}
	h := Chain(nopFast{}, g).(*chained)
	rec := fastpath.NewRecorder()
	req := &fastpath.Request{Method: "GET", Proto: "HTTP/1.1", ProtoMinor: 1, Path: "/a", RawPath: "/a", URI: "/a", KeepAlive: true}
	rec.Serve(h, req)
	if n := testing.AllocsPerRun(200, func() { rec.Serve(h, req) }); n != 0 {
		t.Errorf("fast path: %v allocs per request", n)
	}
	r, _ := http.NewRequest("GET", "/a", nil)
	r.Header.Set("Authorization", "Basic YTpi")
	w := nopWriter{}
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("net/http: %v allocs per request", n)
	}
}

type nopFast struct{}

func (nopFast) ServeHTTP(http.ResponseWriter, *http.Request) {}
func (nopFast) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	w.WriteHeader(204)
	return true
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return nil }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}
