package filesystem

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// rename is os.Rename without the lstat of to it makes first, to refuse a
// directory there: the driver renames files onto the paths of files, and
// rename(2) itself refuses to put a file over a directory.
func rename(from, to string) error {
	if err := retryEINTR(func() error { return syscall.Rename(from, to) }); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// removeAll removes the file or the directory tree at path, and fails
// with an error that is fs.ErrNotExist when there is nothing there.
// os.RemoveAll tries every directory as a file before it opens it, and the
// top one as an empty directory too, then stats it: on an upload session's
// directory, six of its twenty system calls failed. Here each entry's type
// comes with its name (d_type) and gets the one call that removes it.
func removeAll(path string) error {
	return removeEntry(unix.AT_FDCWD, path, path, true)
}

// removeEntry removes name, in the directory open as dirfd, full being its
// whole path; isDir is what its directory entry said it was. An entry
// missing from the start is reported as not existing (the caller below
// the top ignores it: another removal took it first).
func removeEntry(dirfd int, name, full string, isDir bool) error {
	if !isDir {
		err := retryEINTR(func() error { return unix.Unlinkat(dirfd, name, 0) })
		if !errors.Is(err, syscall.EISDIR) {
			return pathErr("unlink", full, err)
		}
		// Made a directory since it was listed.
	}
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
		// A file, or a link, which goes without what it points to.
		err = retryEINTR(func() error { return unix.Unlinkat(dirfd, name, 0) })
		return pathErr("unlink", full, err)
	}
	if err != nil {
		return pathErr("open", full, err)
	}
	dir := os.NewFile(uintptr(fd), full)
	defer dir.Close()
	for try := 0; ; try++ {
		// A batch at a time, so that a huge directory (Delete("/"))
		// never has all its names in memory; an entry a removal moved
		// past is found by the next listing.
		for {
			entries, err := dir.ReadDir(1024)
			if err != nil && err != io.EOF {
				return err
			}
			for _, e := range entries {
				if err := removeEntry(fd, e.Name(), full+"/"+e.Name(), e.IsDir()); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			if len(entries) < 1024 {
				break
			}
		}
		err = retryEINTR(func() error { return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) })
		if errors.Is(err, syscall.ENOENT) {
			// Another removal took it once it was empty.
			return nil
		}
		if !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) || try == dirRetries {
			return pathErr("remove", full, err)
		}
		// An entry was made meanwhile: list again.
		if _, err := dir.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
}

// pathErr is err, if any, as a *fs.PathError.
func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}
