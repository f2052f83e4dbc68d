//go:build race || msan || asan

package listener

import "syscall"

// rawIO is the syscall package's read or write here: those tell the race
// detector, msan and asan what the kernel read or wrote, where a raw
// system call would leave them blind (and report races the socket
// ordered). The monitor thread wakes as it always did; these builds are
// for tests.
func rawIO(trap uintptr, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		var n int
		var err error
		if trap == syscall.SYS_READ {
			n, err = syscall.Read(int(fd), p)
		} else {
			n, err = syscall.Write(int(fd), p)
		}
		if err == syscall.EINTR {
			continue
		}
		if errno, ok := err.(syscall.Errno); ok {
			return 0, errno
		}
		return n, 0
	}
}
