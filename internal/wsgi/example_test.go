package wsgi

import (
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// The example in examples/wsgi keeps working: its app under a 3-worker
// pool at /app/, as its portico.toml configures it.
func TestExampleApp(t *testing.T) {
	t.Parallel()
	tp := newPoolAt(t, config.WSGI{App: "myapp:application", Dir: testdataPath(t, "../../examples/wsgi"),
		Workers: 3, Python: python(t), Timeout: config.Duration(10 * time.Second)}, "/app")
	cases := []struct {
		path   string
		status int
		want   string
	}{
		{"/app/", 200, `href="/app/hello?name=world"`},
		{"/app/hello?name=%3Cportico%3E", 200, "Hello, &lt;portico&gt;!"},
		{"/app/env", 200, "SCRIPT_NAME = '/app'"},
		{"/app/nope", 404, "No page at /app/nope"},
	}
	for _, c := range cases {
		resp, b := tp.get(t, c.path)
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: status %d, body %q; want %d with %q", c.path, resp.StatusCode, b, c.status, c.want)
		}
	}
	resp, b := do(t, mustReq(t, "POST", tp.srv.URL+"/app/echo", strings.NewReader("message=hi+there")))
	if resp.StatusCode != 200 || !strings.Contains(string(b), "message = hi there") {
		t.Errorf("POST /app/echo: status %d body %q", resp.StatusCode, b)
	}
}
