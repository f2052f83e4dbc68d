//go:build !race && !msan && !asan

package listener

import (
	"syscall"
	"unsafe"
)

// rawIO reads into or writes from p with one raw system call, retrying
// one a signal interrupted: the poller, which is edge-triggered, would
// not wake for bytes already there.
func rawIO(trap uintptr, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		r, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), 0
	}
}
