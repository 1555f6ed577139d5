//go:build !linux

package server

import (
	"net"
	"syscall"
)

// deferAccept is a no-op where TCP_DEFER_ACCEPT does not exist.
func deferAccept(network, address string, c syscall.RawConn) error { return nil }

// rawAccept returns ln: package rawsock's listener is Linux's.
func rawAccept(ln net.Listener) net.Listener { return ln }
