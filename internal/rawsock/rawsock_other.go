//go:build unix && (!linux || race)

package rawsock

import "syscall"

// Elsewhere, and under the race detector, the plain system calls. The
// scheduler hand-over described in rawsock.go was measured on Linux only;
// and package syscall's Read and Write tell the race detector that bytes
// written on one socket and read on another order the two goroutines, as
// every net.Conn's calls do: without that, tests that set up a server's
// state before they send it a request would be reported as races.

func read(fd int, p []byte) (int, error)  { return syscall.Read(fd, p) }
func write(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }

func peek(fd int) (int, error) {
	var b [1]byte
	n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, err
}
