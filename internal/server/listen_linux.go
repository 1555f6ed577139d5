package server

import (
	"net"
	"syscall"

	"portico/internal/rawsock"
)

// deferAccept makes the kernel hand a new connection to accept(2) only
// once its first bytes have arrived (TCP_DEFER_ACCEPT; nginx's `listen
// ... deferred`, lighttpd's server.defer-accept). HTTP and TLS clients
// speak first, so nothing changes for them, except that the first read
// of a connection finds its request instead of EAGAIN, a netpoller wait
// and a second read: about two system calls less per new connection. A
// client that sends nothing is accepted after about a second anyway
// (once the kernel has retransmitted its SYN-ACK), and read_header_timeout
// then applies as before. Failure to set it only costs those calls.
func deferAccept(network, address string, c syscall.RawConn) error {
	_ = c.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
	})
	return nil
}

// rawAccept makes a plain-HTTP listener accept its connections with
// package rawsock's calls (rawsock.Listener): a connection the fast path
// answers without waiting then costs no netpoller registration and none
// of the scheduler's system-call bookkeeping. Any other listener is
// returned as it is.
func rawAccept(ln net.Listener) net.Listener {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln
	}
	rl, err := rawsock.NewListener(tl)
	if err != nil {
		return ln
	}
	return rl
}
