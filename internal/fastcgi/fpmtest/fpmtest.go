// Package fpmtest starts Debian's php-fpm for tests: in the foreground,
// with its own config in a temp dir, a unix socket there, pm = static, and
// stopped (with its whole process group) when the test ends. Under -short
// the test is skipped: php-fpm tests are the heavy ones.
package fpmtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is Debian's php-fpm (package php8.2-fpm, installed by .ci/run).
const Binary = "/usr/sbin/php-fpm8.2"

// Start runs php-fpm in the foreground with a pool of children static
// workers listening on a unix socket in dir. extra is added to the pool
// section. It returns the socket path and a stop function (also run at
// the test's end).
func Start(t testing.TB, dir string, children int, extra string) (string, func()) {
	t.Helper()
	if testing.Short() {
		t.Skip("php-fpm tests are heavy; skipped with -short")
	}
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("%s: %v (install php8.2-fpm: .ci/run does)", Binary, err)
	}
	sock := filepath.Join(dir, "fpm.sock")
	conf := filepath.Join(dir, "fpm.conf")
	text := fmt.Sprintf(`[global]
error_log = %s
daemonize = no

[test]
listen = %s
pm = static
pm.max_children = %d
clear_env = yes
; as in production: errors logged (FCGI_STDERR), not shown
php_admin_value[display_errors] = off
php_admin_flag[log_errors] = on
%s
`, filepath.Join(dir, "fpm.log"), sock, children, extra)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// -n: no php.ini, so the machine's settings do not leak in (and
	// output_buffering is off, as flush() tests need).
	args := []string{"-F", "-n", "-y", conf}
	if os.Geteuid() == 0 {
		args = append(args, "-R") // php-fpm refuses root without it
	}
	cmd := exec.Command(Binary, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT) // graceful
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			_ = os.Remove(sock)
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "fpm.log"))
			t.Fatalf("php-fpm exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("php-fpm did not open its socket within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sock, stop
}
