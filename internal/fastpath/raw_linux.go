package fastpath

import (
	"net"
	"syscall"

	"portico/internal/rawsock"
)

// acceptedRaw returns the RawConn of a socket accepted raw
// (rawsock.Listener), else nil.
func acceptedRaw(nc net.Conn) syscall.RawConn {
	if s, ok := nc.(*rawsock.Socket); ok {
		rc, _ := s.SyscallConn()
		return rc
	}
	return nil
}
