package filesystem

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// The driver opens its files with openFile rather than os.OpenFile, which
// on Linux offers every file it opens to the network poller. A regular
// file or a directory is refused, and os.OpenFile switches the descriptor
// to non-blocking mode and back around the refusal: six system calls for
// an open where two do. A blob push opens about twenty files and
// directories, and each system call can wake the Go runtime's monitor
// thread, which costs more than the call on a virtual machine. (On the
// BSDs and macOS os.OpenFile keeps regular files and directories off the
// poller itself; elsewhere sys_other.go uses the os package.)

// oDirectory makes openFile fail on anything but a directory.
const oDirectory = syscall.O_DIRECTORY

// openFile opens path with flag (O_CLOEXEC added) and perm, as a blocking
// *os.File.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = syscall.Open(path, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// retryEINTR runs call until it is not interrupted by a signal, which Go's
// own preemption sends.
func retryEINTR(call func() error) error {
	for {
		if err := call(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	err = retryEINTR(func() error { return syscall.Fsync(fd) })
	if cerr := syscall.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	return nil
}
