package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testsslFinding is one entry of testssl.sh's --jsonfile output.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// Fault: an audit of a TLS site by testssl.sh: protocols (-p) and every
// cipher of every protocol (-E; the cipher categories of -s and the
// forward secrecy list of -f would only repeat it, at twice the time).
// Nothing weak may be offered: no SSLv2/3, no TLS 1.0/1.1, only AEAD
// ciphers with forward secrecy, and no finding of severity LOW or worse.
func TestFaultTestsslNoWeakProtocolOrCipher(t *testing.T) {
	// Slow and independent: runs beside the other parallel tests once
	// the sequential ones are done.
	t.Parallel()
	if testing.Short() {
		t.Skip("testssl.sh takes about 25s (-short)")
	}
	bin, err := exec.LookPath("testssl")
	if err != nil {
		t.Fatal("testssl not installed: .ci/run installs the Debian package testssl.sh")
	}
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t, "tls.test")
	writeFiles(t, dir, map[string]string{"cert.pem": certPEM, "key.pem": keyPEM, "public/index.html": "secure", "portico.toml": `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
hosts = ["tls.test"]
tls = { cert = "cert.pem", key = "key.pem" }
  [[site.route]]
  path = "/"
  static = { root = "public" }
`})
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")
	target := strings.TrimSuffix(strings.TrimPrefix(p.URLs[0], "https://"), "/")

	jsonPath := filepath.Join(t.TempDir(), "testssl.json")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--quiet", "--warnings", "off", "--color", "0",
		"--ip", "one", "--connect-timeout", "5", "--openssl-timeout", "5",
		"-p", "-E", "--jsonfile", jsonPath, target)
	// testssl runs openssl and other helpers: kill them with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("testssl did not finish in 150s:\n%s", out)
	}
	raw, rerr := os.ReadFile(jsonPath)
	if rerr != nil {
		t.Fatalf("testssl (%v) wrote no JSON: %v\n%s", err, rerr, out)
	}
	var findings []testsslFinding
	if err := json.Unmarshal(raw, &findings); err != nil {
		t.Fatalf("testssl JSON: %v\n%s", err, raw)
	}

	byID := map[string]testsslFinding{}
	var ciphers, weak []string
	for _, f := range findings {
		byID[f.ID] = f
		switch f.Severity {
		case "LOW", "MEDIUM", "HIGH", "CRITICAL", "FATAL":
			weak = append(weak, f.ID+" "+f.Severity+": "+f.Finding)
		case "WARN":
			if f.ID != "engine_problem" { // about testssl's own openssl, not the server
				weak = append(weak, f.ID+" WARN: "+f.Finding)
			}
		}
		if strings.HasPrefix(f.ID, "cipher-tls") || strings.HasPrefix(f.ID, "cipher-ssl") {
			// "TLS 1.2   xc02c   ECDHE-ECDSA-AES256-GCM-SHA384   ECDH 253 ..."
			fields := strings.Fields(f.Finding)
			if len(fields) < 4 {
				weak = append(weak, "unreadable cipher line: "+f.Finding)
				continue
			}
			proto, suite := fields[0]+" "+fields[1], fields[3]
			ciphers = append(ciphers, proto+" "+suite)
			if !strings.Contains(suite, "GCM") && !strings.Contains(suite, "POLY1305") {
				weak = append(weak, "not an AEAD cipher: "+proto+" "+suite)
			}
			if proto != "TLS 1.3" && !strings.HasPrefix(suite, "ECDHE-") && !strings.HasPrefix(suite, "DHE-") {
				weak = append(weak, "no forward secrecy: "+proto+" "+suite)
			}
		}
	}
	var offered []string
	for _, proto := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"} {
		f, ok := byID[proto]
		switch {
		case !ok:
			weak = append(weak, proto+": not tested")
		case !strings.HasPrefix(f.Finding, "not offered"):
			offered = append(offered, proto)
			if proto != "TLS1_2" && proto != "TLS1_3" {
				weak = append(weak, proto+" offered: "+f.Finding)
			}
		}
	}
	faultSummary(t, "testssl", "%d findings in %v: protocols offered %v, %d ciphers (%s), %d weak",
		len(findings), took.Round(time.Second), offered, len(ciphers), strings.Join(ciphers, ", "), len(weak))
	for _, w := range weak {
		t.Errorf("testssl: %s", w)
	}
	if len(ciphers) == 0 {
		t.Errorf("testssl listed no cipher (-E did not run?):\n%s", out)
	}
	if len(offered) == 0 {
		t.Errorf("testssl found no protocol offered:\n%s", out)
	}
}
