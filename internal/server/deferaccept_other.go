//go:build !linux

package server

import "syscall"

// deferAccept is a no-op where TCP_DEFER_ACCEPT does not exist.
func deferAccept(network, address string, c syscall.RawConn) error { return nil }
