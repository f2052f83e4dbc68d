package filesystem

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// syncDirs makes the entries of each of dirs durable, the syncs running at
// once: none needs another done first, as a commit is acknowledged only
// when all are, and a crash between them leaves an entry without its
// directory or a directory without its entry, which every reader takes
// for an absent file. Waiting for them in turn added their latencies to
// the commit's; at once, the disk serves them together.
//
// The caller holds one of the driver's slots, which the first sync uses.
// Every other sync runs on a goroutine of its own only when it gets a
// slot of its own at once, so that MaxThreads still bounds the threads
// blocked in the file system; without one it runs here, in turn. (Waiting
// for a slot could deadlock: every holder may be a commit waiting too.)
func (d *Driver) syncDirs(dirs []string) error {
	switch len(dirs) {
	case 0:
		return nil
	case 1:
		return syncDir(dirs[0])
	}
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs[1:] {
		select {
		case d.sem <- struct{}{}:
			wg.Go(func() {
				defer d.release()
				errs[i+1] = syncDir(dir)
			})
		default:
			errs[i+1] = syncDir(dir)
		}
	}
	errs[0] = syncDir(dirs[0])
	wg.Wait()
	return errors.Join(errs...)
}

// dirsToSync is dir and the parent of each directory in created: what a
// commit into dir must make durable (see inDir). A directory made again
// after a prune is in created twice, and is synced once.
func dirsToSync(dir string, created []string) []string {
	dirs := make([]string, 0, 1+len(created))
	dirs = append(dirs, dir)
	for _, c := range created {
		if p := filepath.Dir(c); !slices.Contains(dirs, p) {
			dirs = append(dirs, p)
		}
	}
	return dirs
}

// createTemp creates a new file in dir named prefix.RANDOM.tmp~, as
// os.CreateTemp does with the pattern prefix+".*.tmp~".
func createTemp(dir, prefix string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, prefix+"."+strconv.FormatUint(rand.Uint64(), 36)+".tmp~")
		f, err := openFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+".*.tmp~"), Err: fs.ErrExist}
}
