package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

// BenchmarkServerNewConnPerRequest is one request per connection through
// the whole server on loopback (listener wrappers, fast path, static
// hit, access log to a discarding writer, metrics): dial, GET with
// "Connection: close", read to the end, close. Client side included.
func BenchmarkServerNewConnPerRequest(b *testing.B) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "1k.txt"), []byte(strings.Repeat("x", 1024)), 0o644)
	file := filepath.Join(dir, "portico.toml")
	os.WriteFile(file, []byte(fmt.Sprintf(`
[server]
access_log = "stdout"
[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
path = "/"
static = { root = %q }
`, dir)), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{Stdout: discard{}, Metrics: NewMetrics()})
	if err := s.Start(cfg); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	var addr string
	for _, a := range s.Addrs() {
		addr = a.String()
	}
	req := []byte("GET /1k.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(req)
		n := 0
		for {
			k, err := c.Read(buf[n:])
			n += k
			if err != nil {
				break
			}
		}
		c.Close()
		if n < 1024 {
			b.Fatalf("short answer: %q", buf[:n])
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
