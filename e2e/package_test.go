package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebPackage builds the .deb the way a release does
// (packaging/build-deb.sh: static binary + nfpm), installs it with dpkg,
// and checks what a user of the package relies on: the installed binary
// says its version and commit, accepts the shipped config, and systemd
// accepts the unit. It purges the package afterwards.
func TestDebPackage(t *testing.T) {
	// Slow and independent: runs beside the other parallel tests once
	// the sequential ones are done.
	t.Parallel()
	if testing.Short() {
		t.Skip("builds nfpm and installs a package")
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg -i needs root (CI runs as root)")
	}
	for _, tool := range []string{"dpkg", "systemd-analyze", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: .ci/run installs it", tool)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "portico").CombinedOutput(); err == nil && strings.Contains(string(out), "installed") {
		t.Fatalf("a portico package is installed already; refusing to replace it")
	}
	out := t.TempDir()
	build := exec.Command("bash", "packaging/build-deb.sh", out)
	build.Dir = ".."
	build.Env = append(os.Environ(), "VERSION=9.8.7")
	res, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, res)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "portico_9.8.7_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one portico_9.8.7 .deb in %s, got %v\n%s", out, debs, res)
	}

	if res, err := exec.Command("dpkg", "-i", debs[0]).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, res)
	}
	t.Cleanup(func() {
		if res, err := exec.Command("dpkg", "--purge", "portico").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, res)
		}
	})

	head, _ := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	commit := strings.TrimSpace(string(head))
	if len(commit) > 12 {
		commit = commit[:12]
	}
	ver, err := exec.Command("/usr/bin/portico", "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(ver), "portico 9.8.7 commit "+commit+" built 20") {
		t.Errorf("installed portico version: %v, %q; want version 9.8.7, commit %s and a build date", err, ver, commit)
	}
	if res, err := exec.Command("/usr/bin/portico", "check", "-c", "/etc/portico/portico.toml").CombinedOutput(); err != nil || strings.TrimSpace(string(res)) != "ok" {
		t.Errorf("check of the shipped config: %v, %q", err, res)
	}
	const unit = "/usr/lib/systemd/system/portico.service"
	if res, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, res)
	}
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/usr/bin/portico run -c /etc/portico/portico.toml",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"User=portico",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"ProtectSystem=strict",
	} {
		if !strings.Contains(string(text), want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
	for _, f := range []string{"/usr/share/bash-completion/completions/portico", "/usr/share/zsh/vendor-completions/_portico",
		"/usr/share/fish/vendor_completions.d/portico.fish", "/usr/share/man/man1/portico.1.gz"} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("the package lacks %s: %v", f, err)
		}
	}
	if _, err := exec.Command("id", "portico").Output(); err != nil {
		t.Errorf("the package made no portico user: %v", err)
	}
	t.Logf("package: %s installed, checked and verified", filepath.Base(debs[0]))
}
