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

// sendMoreFlags: an answer's head is sent with more to come (MSG_MORE
// corks it with the body the next call sends), and a peer gone makes
// EPIPE, not SIGPIPE.
const sendMoreFlags = syscall.MSG_MORE | syscall.MSG_NOSIGNAL
