//go:build !linux

package fastpath

import (
	"net"
	"syscall"
)

// acceptedRaw: sockets are accepted raw on Linux only.
func acceptedRaw(net.Conn) syscall.RawConn { return nil }

// sendMoreFlags: no MSG_MORE elsewhere (the head goes out alone), and Go
// turns SIGPIPE on a socket into EPIPE itself.
const sendMoreFlags = 0
