package e2e

import (
	"context"
	"encoding/xml"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// h2specFloor is the number of h2spec cases portico passes on every run;
// the test fails if a change loses more. Typically 142 of 145 pass. The 3
// that always fail are Go's HTTP/2 server's, which serves portico's
// HTTP/2, and cannot be fixed from outside it: 6.5.3/1 (Go rejects a
// SETTINGS frame that repeats a setting, a guard against floods, with
// PROTOCOL_ERROR) and 8.1.2.2/1-2 (Go answers a request with a
// connection-specific header 400 before any handler is called, where
// h2spec wants RST_STREAM; golang/go#26321; RFC 9113 section 8.1.1 allows
// the answer). 4.2/3, which Go's server fails by default, passes: portico
// caps frames at 16 KiB (tls.go). Two more depend on timing and each fails
// now and then (about 1 run in 10 on a quiet machine, more under load):
// 6.9.1/3 and 8.1.2.6/1-2 send a request body after HEADERS and expect its
// error (a window overflow, a Content-Length mismatch) to be reset with a
// specific code, but the static response may be complete first, and Go
// then resets the stream with NO_ERROR and ignores the rest (seen both in
// one run). The floor allows them to fail.
const h2specFloor = 140

// TestH2Spec runs h2spec, the HTTP/2 conformance suite, against a TLS
// site and reports how many of its cases pass.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec run (-short)")
	}
	bin, err := exec.LookPath("h2spec")
	if err != nil {
		if gopath, gerr := exec.Command("go", "env", "GOPATH").Output(); gerr == nil {
			cand := filepath.Join(string(trimNL(gopath)), "bin", "h2spec")
			if _, serr := os.Stat(cand); serr == nil {
				bin, err = cand, nil
			}
		}
	}
	if err != nil {
		t.Fatal("h2spec not found: .ci/run installs it (go install github.com/summerwind/h2spec/cmd/h2spec)")
	}
	dir := t.TempDir()
	cert, key := selfSigned(t, "localhost")
	writeFiles(t, dir, map[string]string{"c.pem": cert, "c.key": key, "public/index.html": "<h1>h2</h1>"})
	p := startConfig(t, dir, `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
tls = { cert = "c.pem", key = "c.key" }
  [[site.route]]
  path = "/"
  static = { root = "public" }
`, 1)
	u, err := url.Parse(p.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-t", "-k", "-h", u.Hostname(), "-p", u.Port(), "-o", "10", "-j", report)
	out, _ := cmd.CombinedOutput() // exits non-zero when a case fails
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec wrote no report: %v\n%s", err, out)
	}
	var suites struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Package string    `xml:"package,attr"`
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	total, passed := 0, 0
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			total++
			if c.Failure == nil && c.Error == nil {
				passed++
			} else {
				t.Logf("h2spec: failed %s %s", c.Package, c.Name)
			}
		}
	}
	t.Logf("h2spec: %d of %d cases passed", passed, total)
	if passed < h2specFloor {
		t.Errorf("h2spec: %d of %d passed, below the floor of %d\n%s", passed, total, h2specFloor, out)
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
