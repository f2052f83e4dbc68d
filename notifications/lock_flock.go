//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package notifications

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking lock on f, released when f is
// closed or the process dies (even by SIGKILL).
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
