package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthzReloadAndPurgeRequests(t *testing.T) {
	reloads := 0
	h := New(Options{Reload: func() error {
		reloads++
		if reloads > 1 {
			return errors.New("portico.toml:3: unknown key \"bogus\"")
		}
		return nil
	}})
	do := func(method, target, ctype, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("GET", "/healthz", "", ""); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("healthz: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do("POST", "/reload", "", ""); rec.Code != 200 {
		t.Errorf("reload: %d", rec.Code)
	}
	if rec := do("POST", "/reload", "", ""); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "bogus") {
		t.Errorf("failed reload: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do("GET", "/reload", "", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /reload: %d, want 405", rec.Code)
	}
	for _, tc := range []struct {
		target, ctype, body string
		code                int
	}{
		{"/cache/purge?url=http://a.test/x", "", "", 200},
		{"/cache/purge", "application/x-www-form-urlencoded", "url=http://a.test/&prefix=true", 200},
		{"/cache/purge", "application/json", `{"url":"http://a.test/","prefix":true}`, 200},
		{"/cache/purge", "", "", 400},
		{"/cache/purge", "application/json", `{"prefix":true}`, 400},
		{"/cache/purge", "application/json", `not json`, 400},
	} {
		if rec := do("POST", tc.target, tc.ctype, tc.body); rec.Code != tc.code {
			t.Errorf("purge %s %q: %d %q, want %d", tc.target, tc.body, rec.Code, rec.Body.String(), tc.code)
		}
	}
}

func TestReloadInQuickMode(t *testing.T) {
	rec := httptest.NewRecorder()
	New(Options{}).ServeHTTP(rec, httptest.NewRequest("POST", "/reload", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("reload without a config file: %d, want 501", rec.Code)
	}
}
