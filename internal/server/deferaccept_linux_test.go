package server

import (
	"net"
	"syscall"
	"testing"
)

// The listeners portico opens defer accept until the first bytes arrive.
func TestListenersDeferAccept(t *testing.T) {
	s, _, _, _ := startFastServer(t, "combined")
	if len(s.listeners) == 0 {
		t.Fatal("no listener")
	}
	for key, l := range s.listeners {
		rc, err := l.ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) {
			v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
		}); err != nil || gerr != nil {
			t.Fatal(err, gerr)
		}
		if v == 0 {
			t.Errorf("listener %s: TCP_DEFER_ACCEPT is off", key)
		}
	}
}
