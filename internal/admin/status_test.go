package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"portico/internal/status"
)

func testSnapshot() status.Snapshot {
	return status.Snapshot{
		Started: time.Now().Add(-90 * time.Second), UptimeSeconds: 90,
		Reload: &status.Reload{At: time.Now(), OK: false, Error: `portico.toml:3: unknown key "<script>"`},
		Sites: []status.Site{{Name: `<b>shop</b>`, Hosts: []string{"shop.test"}, Listen: []string{":8080"},
			Routes: []status.Route{
				{Path: "/api/", Kind: "proxy", Upstreams: []status.Upstream{{Addr: "127.0.0.1:8081", Healthy: true, InFlight: 3}, {Addr: "127.0.0.1:8082"}},
					Cache: &status.Cache{Hits: 3, Misses: 1, HitRatio: 0.75, Entries: 2, Bytes: 2048, MaxSize: 16 << 20}},
				{Path: "/app/", Kind: "wsgi", WSGI: &status.WSGI{Workers: 4, Alive: 4, Idle: 1, Busy: 3}},
			}}},
	}
}

func TestStatusPage(t *testing.T) {
	h := New(Options{Addr: "127.0.0.1:2019", Status: testSnapshot, Version: "1.2.3"})
	tests := []struct {
		query, wantType string
		wantCode        int
		want, notWant   []string
	}{
		{"", "text/html", 200,
			[]string{"1.2.3", "1m30s", "&lt;b&gt;shop&lt;/b&gt;", "127.0.0.1:8081</code> <span class=\"ok\">up</span>, 3 in flight",
				"127.0.0.1:8082</code> <span class=\"bad\">down</span>", "hit ratio 75.0%", "2.0 KiB of 16.0 MiB",
				"4 alive of 4 (3 busy, 1 idle)", "failed", "&lt;script&gt;"},
			[]string{"<b>shop", "<script"}},
		{"?format=json", "application/json", 200, []string{`"version":"1.2.3"`, `"hit_ratio":0.75`, `"busy":3`}, nil},
		{"?format=xml", "application/json", 400, []string{"format"}, nil},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "http://127.0.0.1:2019/"+tt.query, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != tt.wantCode || !strings.HasPrefix(rec.Header().Get("Content-Type"), tt.wantType) {
			t.Errorf("GET /%s: %d %q, want %d %s", tt.query, rec.Code, rec.Header().Get("Content-Type"), tt.wantCode, tt.wantType)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET /%s: body lacks %q", tt.query, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(body, w) {
				t.Errorf("GET /%s: body has %q (unescaped)", tt.query, w)
			}
		}
		if tt.query == "?format=json" {
			var snap status.Snapshot
			if err := json.Unmarshal(rec.Body.Bytes(), &snap); err != nil || len(snap.Sites) != 1 {
				t.Errorf("JSON does not decode to a snapshot: %v", err)
			}
		}
	}
	// Only "/" is the page; other paths stay 404, and a rebinding Host is refused.
	for _, c := range []struct {
		url  string
		code int
	}{{"http://127.0.0.1:2019/nope", 404}, {"http://evil.example:2019/", http.StatusMisdirectedRequest}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", c.url, nil))
		if rec.Code != c.code {
			t.Errorf("GET %s: %d, want %d", c.url, rec.Code, c.code)
		}
	}
}
