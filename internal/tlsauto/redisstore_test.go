package tlsauto

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testing.Short() {
			t.Skip("redis-server not installed (-short)")
		}
		t.Fatal("redis-server not installed: .ci/run installs it")
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisStorage(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	s, err := newRedisStorage("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, err := s.Load(ctx, "certificates/ca/a.test/a.test.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("load of a missing key: %v, want fs.ErrNotExist", err)
	}
	for _, k := range []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key", "certificates/ca/b.test/b.test.crt", "acme/ca/users/x.json"} {
		if err := s.Store(ctx, k, []byte("v:"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.Load(ctx, "certificates/ca/a.test/a.test.key"); err != nil || string(v) != "v:certificates/ca/a.test/a.test.key" {
		t.Errorf("load: %q %v", v, err)
	}
	if l, _ := s.List(ctx, "certificates/ca", false); len(l) != 2 || l[0] != "certificates/ca/a.test" {
		t.Errorf("list one level: %v", l)
	}
	if l, _ := s.List(ctx, "certificates", true); len(l) != 3 {
		t.Errorf("list recursive: %v", l)
	}
	if !s.Exists(ctx, "certificates/ca/a.test") || s.Exists(ctx, "certificates/ca/c.test") {
		t.Errorf("exists: directory or missing key wrong")
	}
	if ki, err := s.Stat(ctx, "acme/ca/users/x.json"); err != nil || !ki.IsTerminal || ki.Size == 0 || time.Since(ki.Modified) > time.Minute {
		t.Errorf("stat: %+v %v", ki, err)
	}
	if err := s.Delete(ctx, "certificates/ca/a.test"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/a.test/a.test.crt") {
		t.Errorf("delete of a directory left its keys")
	}
}

// TestRedisLockExpiresWhenTheHolderDies: an instance that dies holding a
// name's lock blocks the others for at most the lock's TTL.
func TestRedisLockExpiresWhenTheHolderDies(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	mk := func() *redisStorage {
		s, err := newRedisStorage("redis://" + addr + "/0")
		if err != nil {
			t.Fatal(err)
		}
		s.ttl, s.refresh, s.poll = time.Second, 300*time.Millisecond, 50*time.Millisecond
		return s
	}
	a, b := mk(), mk()
	defer b.close()
	if err := a.Lock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	// While a lives, it refreshes its lock: b must still be waiting after
	// more than one TTL.
	wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	if err := b.Lock(wctx, "issue_cert_a.test"); err == nil {
		t.Fatal("b took a lock a still holds")
	}
	cancel()
	a.close() // a dies without unlocking: its refresher stops
	start := time.Now()
	wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.Lock(wctx, "issue_cert_a.test"); err != nil {
		t.Fatalf("b never got the dead holder's lock: %v", err)
	}
	t.Logf("lock freed %v after its holder died", time.Since(start).Round(10*time.Millisecond))
	// Only the holder unlocks: a stale Unlock from a does nothing.
	a2 := mk()
	a2.owner = a.owner
	defer a2.close()
	a2.Unlock(ctx, "issue_cert_a.test")
	if n, _ := b.c.Exists(ctx, b.prefix+":lock:issue_cert_a.test").Result(); n != 1 {
		t.Errorf("a stale Unlock removed b's lock")
	}
	b.Unlock(ctx, "issue_cert_a.test")
}
