package filesystem

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the given range of f to
// disk now, without waiting for it to be written.
func startWriteback(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
