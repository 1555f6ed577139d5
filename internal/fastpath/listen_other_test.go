//go:build !linux

package fastpath

import (
	"net"
	"testing"
)

func listenAsServer(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
