//go:build !linux

package fastpath

import (
	"net"
	"syscall"
)

// acceptedRaw: sockets are accepted raw on Linux only.
func acceptedRaw(net.Conn) syscall.RawConn { return nil }
