package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsPeopleAlertOn scrapes /metrics and reads it with Prometheus'
// own text parser: per-route requests by class and latency, per-upstream
// up/down, requests, errors and response time, CGI processes and
// timeouts, reloads by result and certificate expiry.
func TestMetricsPeopleAlertOn(t *testing.T) {
	dir := t.TempDir()
	// As root, scripts run as nobody, who must reach them.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/boom" {
			http.Error(w, "boom", 500)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer app.Close()
	cert, key := selfSigned(t, "metrics.test")
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	writeFiles(t, dir, map[string]string{"c.pem": cert, "c.key": key, "public/index.html": "home",
		"cgi-bin/slow.sh": "#!/bin/sh\nsleep 5\necho 'Content-Type: text/plain'\necho\necho late\n"})
	for _, p := range []string{"cgi-bin", "cgi-bin/slow.sh"} {
		if err := os.Chmod(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`
[server]
admin = %q
access_log = "off"
[[site]]
name = "web"
listen = ["127.0.0.1:0"]
  [[site.route]]
  path = "/"
  static = { root = "public" }
  [[site.route]]
  path = "/api/"
  proxy = { upstreams = [%q, "http://127.0.0.1:1"], retries = -1 }
  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "cgi-bin", timeout = "300ms" }
[[site]]
name = "secure"
listen = ["127.0.0.1:%d"]
tls = { cert = "c.pem", key = "c.key" }
http3 = false
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, admin, app.URL, freePort(t))
	p := startConfig(t, dir, cfg, 2)
	web := p.URLs[0]
	if strings.HasPrefix(web, "https") {
		web = p.URLs[1]
	}
	web = strings.TrimSuffix(web, "/")
	for i := 0; i < 6; i++ {
		get(t, web+"/")
		get(t, web+"/missing")
		get(t, web+"/api/x")
	}
	get(t, web+"/api/boom")
	if r, b := get(t, web+"/cgi-bin/slow.sh"); r.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("slow script: %d %q, want 504", r.StatusCode, b)
	}
	var fams map[string]*dto.MetricFamily
	scrape := func() {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("Prometheus' parser refuses /metrics: %v", err)
		}
	}
	scrape()
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return sampleValue(m), true
		}
		return 0, false
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		what   string
	}{
		{"portico_route_requests_total", map[string]string{"site": "web", "route": "/", "class": "2xx"}, eq(6), "6"},
		{"portico_route_requests_total", map[string]string{"site": "web", "route": "/", "class": "4xx"}, eq(6), "6"},
		{"portico_route_requests_total", map[string]string{"site": "web", "route": "/api/", "class": "5xx"}, atLeast(1), ">= 1"},
		{"portico_route_request_duration_seconds", map[string]string{"site": "web", "route": "/api/"}, atLeast(7), "a histogram of >= 7"},
		{"portico_upstream_up", map[string]string{"upstream": strings.TrimPrefix(app.URL, "http://")}, eq(1), "1"},
		{"portico_upstream_errors_total", map[string]string{"upstream": "127.0.0.1:1"}, atLeast(1), ">= 1"},
		{"portico_upstream_requests_total", map[string]string{"upstream": strings.TrimPrefix(app.URL, "http://")}, atLeast(1), ">= 1"},
		{"portico_upstream_response_head_seconds", map[string]string{"upstream": strings.TrimPrefix(app.URL, "http://")}, atLeast(1), "a summary of >= 1"},
		{"portico_cgi_timeouts_total", map[string]string{"route": "/cgi-bin/"}, eq(1), "1"},
		{"portico_cgi_max_processes", map[string]string{"route": "/cgi-bin/"}, atLeast(1), ">= 1"},
		{"portico_reloads_total", map[string]string{"result": "ok"}, eq(1), "1"},
		{"portico_reloads_total", map[string]string{"result": "failed"}, eq(1), "1"},
		{"portico_tls_certificate_expiry_timestamp_seconds", map[string]string{"site": "secure", "source": "file"},
			func(v float64) bool { return v > float64(time.Now().Unix()) }, "in the future"},
	}
	for i, c := range checks {
		if i == len(checks)-3 {
			// Reloads: one that takes, one that fails. (A reload builds
			// new handlers: their counters start again from 0, which
			// Prometheus' rate() reads as a counter reset.)
			p.Signal(syscall.SIGHUP) // ok
			waitFor(t, 10*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "config reloaded") })
			writeFiles(t, dir, map[string]string{"portico.toml": cfg + "\nnope = 1\n"})
			p.Signal(syscall.SIGHUP) // failed
			waitFor(t, 10*time.Second, func() bool { return strings.Contains(p.Stderr.String(), "reload failed") })
			scrape()
		}
		v, ok := value(c.name, c.labels)
		if !ok || !c.want(v) {
			t.Errorf("%s%v = %v (found %v), want %s", c.name, c.labels, v, ok, c.what)
		}
	}
	t.Logf("metrics: %d families parsed by Prometheus' text parser", len(fams))
}

func eq(want float64) func(float64) bool      { return func(v float64) bool { return v == want } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

// sampleValue is a sample's value; for histograms and summaries, its count.
func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount())
	}
	return 0
}
