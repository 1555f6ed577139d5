package e2e

import (
	"net"
	"testing"
	"time"
)

// rawTo sends raw on a new TCP connection to addr and reads until the
// server closes the connection or d passes.
func rawTo(t *testing.T, addr, raw string, d time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out)
		}
	}
}
