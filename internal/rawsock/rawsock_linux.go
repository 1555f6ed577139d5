//go:build linux && !race

package rawsock

import (
	"syscall"
	"unsafe"
)

func read(fd int, p []byte) (int, error) {
	ptr := bufPtr(p)
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func write(fd int, p []byte) (int, error) {
	ptr := bufPtr(p)
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func peek(fd int) (int, error) {
	var b [1]byte
	r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// bufPtr is p's first byte, or nil for an empty p (the kernel then reads
// or writes nothing). As in package syscall, the pointer is converted to
// uintptr in the call's argument list, which keeps p alive and in place
// for the call.
func bufPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Pointer(&p[0])
}
