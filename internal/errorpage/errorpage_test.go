package errorpage

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteChoosesHTMLOrText(t *testing.T) {
	tests := []struct {
		accept, method string
		status         int
		ctype, body    string
	}{
		{"text/html,application/xhtml+xml", "GET", 404, "text/html; charset=utf-8", "<h1>404 Not Found</h1>"},
		{"*/*", "GET", 404, "text/plain; charset=utf-8", "404 Not Found\n"},
		{"", "GET", 502, "text/plain; charset=utf-8", "502 Bad Gateway\n"},
		{"text/html", "HEAD", 403, "text/html; charset=utf-8", ""},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(tc.method, "/x", nil)
		req.Header.Set("Accept", tc.accept)
		rec := httptest.NewRecorder()
		rec.Header().Set("ETag", `"stale"`)
		rec.Header().Set("Content-Encoding", "gzip")
		Write(rec, req, tc.status)
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.ctype {
			t.Errorf("%s Accept %q: got %d %q, want %d %q", tc.method, tc.accept, rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.ctype)
		}
		if got := rec.Body.String(); tc.body == "" && got != "" || !strings.Contains(got, tc.body) {
			t.Errorf("%s Accept %q: body %q, want %q", tc.method, tc.accept, got, tc.body)
		}
		if rec.Header().Get("ETag") != "" || rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("error page kept the file's ETag or Content-Encoding: %v", rec.Header())
		}
	}
}

func TestMessageIsEscaped(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	WriteMessage(rec, req, 400, `<script>alert("x")</script>`)
	if strings.Contains(rec.Body.String(), "<script>") {
		t.Errorf("message not escaped: %s", rec.Body.String())
	}
}
