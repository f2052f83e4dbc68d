package filesystem

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Directories exist while they hold something, as on an object store:
// writes create them and deletes prune them. The two can race (a prune
// removing the directory a writer just made), so a write that finds its
// directory gone makes it again and retries.

const dirRetries = 8

// inDir runs op, which creates an entry in dir, creating dir first if op
// finds it missing. The directories it makes are appended to created and
// are not synced: the caller syncs their parents (dirsToSync) once the
// file it commits below them is in place. Made before that file's own
// syncs, they are committed by the same journal transaction on ext4 or
// xfs, and their syncs find nothing left to wait for: a new blob and its
// link each wait for two journal commits instead of three.
func (d *Driver) inDir(dir string, created *[]string, op func() error) error {
	err := op()
	for range dirRetries {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err = d.mkdirAll(dir, created); err == nil {
			err = op()
		}
	}
	return err
}

// mkdirAll creates dir and its missing parents, appending each directory
// it made to created. A parent pruned between its creation and its
// child's is made again.
func (d *Driver) mkdirAll(dir string, created *[]string) error {
	err := os.Mkdir(dir, 0o755)
	for range dirRetries {
		if !errors.Is(err, fs.ErrNotExist) || dir == d.root || filepath.Dir(dir) == dir {
			break
		}
		if err := d.mkdirAll(filepath.Dir(dir), created); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o755)
	}
	switch {
	case err == nil:
		*created = append(*created, dir)
		return nil
	case errors.Is(err, fs.ErrExist):
		return nil
	default:
		return err
	}
}

// prune removes dir and its parents while they are empty, up to the root.
// It stops at the first that is not empty (or cannot be removed).
func (d *Driver) prune(dir string) {
	for dir != d.root && len(dir) > len(d.root) {
		// Rmdir, not os.Remove: it can only ever remove an empty directory.
		if syscall.Rmdir(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}
