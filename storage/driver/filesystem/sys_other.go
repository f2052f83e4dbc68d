//go:build !linux

package filesystem

import "os"

// oDirectory: os.File.Readdirnames refuses a file that is not a directory.
const oDirectory = 0

// openFile is os.OpenFile, which on the BSDs and macOS keeps regular files
// and directories off the poller by itself (see sys_linux.go).
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

// syncDir makes the entries of dir durable. File.Sync is F_FULLFSYNC on
// macOS, where fsync(2) leaves the data in the drive's cache.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rename is os.Rename (see sys_linux.go).
func rename(from, to string) error { return os.Rename(from, to) }

// removeAll removes the file or the directory tree at path, and fails
// with an error that is fs.ErrNotExist when there is nothing there.
func removeAll(path string) error {
	if _, err := os.Lstat(path); err != nil {
		return err
	}
	return os.RemoveAll(path)
}
