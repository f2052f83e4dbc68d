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
// finds it missing.
func (d *Driver) inDir(dir string, op func() error) error {
	return d.inDirSynced(dir, true, nil, op)
}

// inDirSynced is inDir, syncing the directories it creates only when
// durable is set; created, when not nil, gets the directories it made.
func (d *Driver) inDirSynced(dir string, durable bool, created *[]string, op func() error) error {
	err := op()
	for range dirRetries {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err = d.mkdirAll(dir, durable, created); err == nil {
			err = op()
		}
	}
	return err
}

// mkdirAll creates dir and its missing parents, syncing (when durable) the
// parent of each directory it creates so that a file committed below
// survives a crash. A parent pruned between its creation and its child's
// is made again. created, when not nil, gets each directory it made.
func (d *Driver) mkdirAll(dir string, durable bool, created *[]string) error {
	err := os.Mkdir(dir, 0o755)
	for range dirRetries {
		if !errors.Is(err, fs.ErrNotExist) || dir == d.root || filepath.Dir(dir) == dir {
			break
		}
		if err := d.mkdirAll(filepath.Dir(dir), durable, created); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o755)
	}
	if err == nil && created != nil {
		*created = append(*created, dir)
	}
	switch {
	case err == nil && durable:
		return syncDir(filepath.Dir(dir))
	case err == nil:
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

// syncDir makes the entries of dir durable.
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
