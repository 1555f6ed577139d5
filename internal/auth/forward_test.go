package auth

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/internal/config"
)

// TestForwardAuth: the auth server sees the method, URI and fields but
// no body; 2xx passes with the copied fields (a client's own copy
// dropped); anything else reaches the client as it is; a dead auth
// server is a 503.
func TestForwardAuth(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	var seenBody []string
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r)
		seenBody = append(seenBody, string(b))
		mu.Unlock()
		switch r.Header.Get("X-Forwarded-Uri") {
		case "/ok?x=1":
			w.Header().Set("Remote-User", "alice")
			w.WriteHeader(200)
		case "/login":
			http.Redirect(w, r, "https://login.example/?rd=/login", http.StatusFound)
		default:
			w.Header().Set("Www-Authenticate", "Bearer")
			w.WriteHeader(401)
			io.WriteString(w, "nope")
		}
	}))
	defer authSrv.Close()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app user="+r.Header.Get("Remote-User")+" email="+r.Header.Get("Remote-Email"))
	})
	f, err := NewForward(config.ForwardAuth{URL: authSrv.URL + "/verify", CopyHeaders: []string{"remote-user", "Remote-Email"}, Timeout: config.Duration(2 * time.Second)}, app, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(nil)
	do := func(method, target, body string, hdr ...string) *http.Response {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, req)
		return rec.Result()
	}
	resp := do("POST", "/ok?x=1", "payload", "Remote-User", "mallory", "Remote-Email", "forged@x", "Cookie", "s=1")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "app user=alice email=" {
		t.Errorf("2xx: %d %q, want the app with the auth server's Remote-User and no forged Remote-Email", resp.StatusCode, b)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].Method != "POST" || seen[0].Header.Get("Cookie") != "s=1" || seenBody[0] != "" || seen[0].URL.Path != "/verify" {
		t.Errorf("auth server saw %+v body %q", seen, seenBody)
	}
	mu.Unlock()
	resp = do("GET", "/login", "")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://login.example/?rd=/login" {
		t.Errorf("redirect: %d %v", resp.StatusCode, resp.Header)
	}
	resp = do("GET", "/private", "")
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || resp.Header.Get("Www-Authenticate") != "Bearer" || string(b) != "nope" {
		t.Errorf("401: %d %v %q", resp.StatusCode, resp.Header, b)
	}

	// The auth server down: 503, never the app.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/verify"
	ln.Close()
	f2, _ := NewForward(config.ForwardAuth{URL: dead, Timeout: config.Duration(time.Second)}, app, Options{})
	rec := httptest.NewRecorder()
	f2.ServeHTTP(rec, httptest.NewRequest("GET", "/ok?x=1", nil))
	if rec.Code != 503 || strings.Contains(rec.Body.String(), "app") {
		t.Errorf("auth server down: %d %q, want 503", rec.Code, rec.Body.String())
	}
}
