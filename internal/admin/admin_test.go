package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// adminDo sends a request to h as a local client would: Host the admin
// address, JSON for what changes state.
func adminDo(h http.Handler, method, target, ctype, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Host = "127.0.0.1:2019"
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const jsonType = "application/json"

func TestHealthzReloadAndPurgeRequests(t *testing.T) {
	reloads := 0
	h := New(Options{Addr: "127.0.0.1:2019", Reload: func() error {
		reloads++
		if reloads > 1 {
			return errors.New("portico.toml:3: unknown key \"bogus\"")
		}
		return nil
	}})
	do := func(method, target, ctype, body string) *httptest.ResponseRecorder {
		return adminDo(h, method, target, ctype, body)
	}
	if rec := do("GET", "/healthz", "", ""); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("healthz: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do("POST", "/reload", jsonType, ""); rec.Code != 200 {
		t.Errorf("reload: %d", rec.Code)
	}
	if rec := do("POST", "/reload", jsonType, ""); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "bogus") {
		t.Errorf("failed reload: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do("GET", "/reload", "", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /reload: %d, want 405", rec.Code)
	}
	for _, tc := range []struct {
		target, ctype, body string
		code                int
	}{
		{"/cache/purge?url=http://a.test/x", jsonType, "", 200},
		{"/cache/purge", jsonType, `{"url":"http://a.test/","prefix":true}`, 200},
		{"/cache/purge", jsonType, "", 400},
		{"/cache/purge", jsonType, `{"prefix":true}`, 400},
		{"/cache/purge", jsonType, `not json`, 400},
		{"/cache/purge", jsonType, `{"tag":"product-42"}`, 200},
		{"/cache/purge?tag=product-42", jsonType, "", 200},
		{"/cache/purge", jsonType, `{"tag":"a","url":"http://a.test/"}`, 400},
		{"/cache/purge", "text/plain", `{"tag":"product-42"}`, http.StatusUnsupportedMediaType},
	} {
		if rec := do("POST", tc.target, tc.ctype, tc.body); rec.Code != tc.code {
			t.Errorf("purge %s %q: %d %q, want %d", tc.target, tc.body, rec.Code, rec.Body.String(), tc.code)
		}
	}
}

func TestReloadInQuickMode(t *testing.T) {
	if rec := adminDo(New(Options{}), "POST", "/reload", jsonType, ""); rec.Code != http.StatusNotImplemented {
		t.Errorf("reload without a config file: %d, want 501", rec.Code)
	}
}

// TestAdminRefusesWhatAWebPageCanSend: DNS rebinding (a foreign Host),
// cross-site POSTs (simple content types, foreign Origin), and a missing
// or wrong token when one is set. Nothing refused reaches the endpoint.
func TestAdminRefusesWhatAWebPageCanSend(t *testing.T) {
	reloads := 0
	h := New(Options{Addr: "admin.internal:2019", Reload: func() error { reloads++; return nil }})
	tests := []struct {
		name, method, path, ctype string
		header                    []string
		want                      int
	}{
		{"rebound name reads metrics", "GET", "/healthz", "", []string{"Host", "evil.test:2019"}, http.StatusMisdirectedRequest},
		{"rebound name, trailing dot", "GET", "/healthz", "", []string{"Host", "evil.test."}, http.StatusMisdirectedRequest},
		{"no Host", "GET", "/healthz", "", []string{"Host", ""}, http.StatusMisdirectedRequest},
		{"IPv4 literal", "GET", "/healthz", "", []string{"Host", "127.0.0.1:2019"}, 200},
		{"IPv6 literal", "GET", "/healthz", "", []string{"Host", "[::1]:2019"}, 200},
		{"localhost", "GET", "/healthz", "", []string{"Host", "LocalHost:2019"}, 200},
		{"configured name", "GET", "/healthz", "", []string{"Host", "admin.internal:2019"}, 200},
		{"form POST", "POST", "/reload", "application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		{"text/plain POST (no preflight)", "POST", "/reload", "text/plain", nil, http.StatusUnsupportedMediaType},
		{"multipart POST", "POST", "/reload", "multipart/form-data; boundary=x", nil, http.StatusUnsupportedMediaType},
		{"POST without type", "POST", "/reload", "", nil, http.StatusUnsupportedMediaType},
		{"foreign Origin", "POST", "/reload", jsonType, []string{"Origin", "https://evil.test"}, http.StatusForbidden},
		{"null Origin", "POST", "/reload", jsonType, []string{"Origin", "null"}, http.StatusForbidden},
		{"purge from a page", "POST", "/cache/purge?url=http://a.test/", "text/plain", nil, http.StatusUnsupportedMediaType},
		{"own Origin", "POST", "/reload", jsonType, []string{"Origin", "http://127.0.0.1:2019"}, 200},
		{"local client", "POST", "/reload", jsonType, nil, 200},
	}
	for _, tc := range tests {
		if rec := adminDo(h, tc.method, tc.path, tc.ctype, "", tc.header...); rec.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
	if reloads != 2 {
		t.Errorf("%d reloads ran, want 2 (only the allowed requests)", reloads)
	}

	withToken := New(Options{Addr: "0.0.0.0:2019", Token: "s3cret-token-0123456789"})
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Basic czNjcmV0", http.StatusUnauthorized},
		{"Bearer s3cret-token-0123456789", 200},
	} {
		if rec := adminDo(withToken, "GET", "/healthz", "", "", "Authorization", tc.auth); rec.Code != tc.want {
			t.Errorf("token %q: %d, want %d", tc.auth, rec.Code, tc.want)
		}
	}
}
