package filesystem

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// partialSuffix marks an unfinished write. '~' is not allowed in a driver
// path, so the partial file of one path can never be another path.
const partialSuffix = ".partial~"

var errClosed = errors.New("writer already committed, cancelled or closed")

// Writer implements driver.Driver.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	final := d.full(path)
	part := final + partialSuffix
	w := &writer{d: d, final: final, part: part}
	var err error
	if append {
		w.f, err = openFile(part, os.O_WRONLY, 0)
		if err != nil {
			return nil, notFound(err)
		}
		if w.size, err = w.f.Seek(0, io.SeekEnd); err != nil {
			w.f.Close()
			return nil, err
		}
		w.resumed = true
		w.shared = sameFile(w.f, final)
		return w, nil
	}
	// The directories are made durable by Commit, not now: a write that
	// is committed elsewhere (CommitTo, an upload session's data) never
	// needs its own directory to survive a crash.
	err = d.inDir(filepath.Dir(final), &w.created, func() (err error) {
		w.f, err = openFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			// An earlier write, maybe shared (see CloseShared): it is
			// unlinked, never truncated, as its bytes may be what path
			// holds.
			if err = os.Remove(part); err == nil {
				w.f, err = openFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

type writer struct {
	d           *Driver
	f           *os.File // nil once closed
	final, part string
	size        int64
	done        bool     // committed or cancelled
	resumed     bool     // opened with append: created is unknown
	shared      bool     // the unfinished file is linked at final too
	created     []string // directories made for this write, not yet synced
	unstarted   int64    // bytes written since the last startWriteback
}

// writebackEvery is how much a writer lets the page cache hold before it
// starts writing it to disk. The kernel's own writeback waits for a share
// of the machine's memory (gigabytes) to be dirty, so without this a big
// blob reached the disk only when Commit synced it: the push took the time
// to receive it plus the time to write it, one after the other. Started
// every few MiB, the disk writes while the body arrives, and the commit's
// sync waits for the last few MiB only. Small blobs never reach it.
const writebackEvery = 8 << 20

func (w *writer) Write(p []byte) (int, error) {
	if w.f == nil {
		return 0, errClosed
	}
	// Writes block a thread like any other filesystem call.
	w.d.sem <- struct{}{}
	n, err := w.f.Write(p)
	w.size += int64(n)
	w.unstarted += int64(n)
	if w.unstarted >= writebackEvery {
		// A hint: an error here (EIO included) is reported again by the
		// commit's Sync, which is what decides.
		_ = w.d.writeback(w.f, w.size-w.unstarted, w.unstarted)
		w.unstarted = 0
	}
	w.d.release()
	return n, err
}

func (w *writer) Size() int64 { return w.size }

// Close keeps what was written for a later Writer(path, true).
func (w *writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// CloseShared implements driver.SharedCloser: after Close, the unfinished
// file is linked at the path itself, where CNCF Distribution's driver
// writes in place and appends. The two names are one file, so what
// Distribution appends through one is what Writer(path, true) resumes
// through the other. A path holding another file (bytes adopted from
// Distribution, an earlier write) is replaced in one rename. The link is
// not synced: after a crash the path may hold an older file, which
// Distribution's offset check refuses to continue.
func (w *writer) CloseShared() error {
	if w.f == nil {
		return nil
	}
	if err := w.Close(); err != nil {
		return err
	}
	if w.shared {
		return nil
	}
	w.d.sem <- struct{}{}
	defer w.d.release()
	if fi, err := os.Lstat(w.final); err == nil && isSameFile(w.part, fi) {
		return nil
	}
	tmp := w.final + "." + strconv.FormatUint(rand.Uint64(), 36) + ".tmp~"
	if err := os.Link(w.part, tmp); err != nil {
		return notFound(err)
	}
	if err := rename(tmp, w.final); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// sameFile tells whether the open file f is the file at path.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	return err == nil && os.SameFile(a, b)
}

// isSameFile tells whether the file at path is fi.
func isSameFile(path string, fi fs.FileInfo) bool {
	a, err := os.Lstat(path)
	return err == nil && os.SameFile(a, fi)
}

// unshare removes the link of a shared write at final, so that nothing
// written through it (Distribution appending to a session Berth commits)
// reaches the file this write becomes.
func (w *writer) unshare() error {
	if !w.shared {
		return nil
	}
	fi, err := os.Lstat(w.final)
	if err != nil || !isSameFile(w.part, fi) {
		return nil
	}
	if err := os.Remove(w.final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Commit syncs the data, renames it into place and syncs the directory and
// the parents of the directories made for it, so that the file is whole at
// its path after a crash, or absent.
func (w *writer) Commit(ctx context.Context) error {
	if err := w.syncAndClose(ctx); err != nil {
		return err
	}
	defer w.d.release()
	// A shared write is one file under both names: renaming one onto
	// the other would leave both.
	if err := w.unshare(); err != nil {
		return err
	}
	if err := rename(w.part, w.final); err != nil {
		// The unfinished write was deleted or replaced meanwhile.
		return notFound(err)
	}
	w.done = true
	created := w.created
	if w.resumed {
		// Another writer made the directories and did not sync them:
		// every ancestor's entry is made durable.
		created = nil
		for dir := filepath.Dir(w.final); dir != w.d.root && len(dir) > len(w.d.root); dir = filepath.Dir(dir) {
			created = append(created, dir)
		}
	}
	return w.d.syncDirs(dirsToSync(filepath.Dir(w.final), created))
}

// CommitTo implements driver.CommitMover: the data is synced and renamed
// straight to path, whose directories are made durable; the directory the
// write was opened in is left as it is (pruned when empty), unsynced.
func (w *writer) CommitTo(ctx context.Context, path string) error {
	to := w.d.full(path)
	// The new directories are made before the data is synced, so that its
	// sync commits them too (see inDir).
	var created []string
	if err := w.d.mkdirAll(filepath.Dir(to), &created); err != nil {
		return err
	}
	if err := w.syncAndClose(ctx); err != nil {
		w.d.prune(filepath.Dir(to))
		return err
	}
	defer w.d.release()
	if err := w.unshare(); err != nil {
		return err
	}
	if err := w.d.renameInto(w.part, to, created); err != nil {
		return err
	}
	w.done = true
	return nil
}

// syncAndClose is the first half of a commit. On success the caller holds
// the driver's semaphore and must release it.
func (w *writer) syncAndClose(ctx context.Context) error {
	if w.f == nil {
		return errClosed
	}
	if err := w.d.acquire(ctx); err != nil {
		return err
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		w.d.release()
		return err
	}
	return nil
}

// Cancel removes the unfinished write and any directory left empty.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if err := w.d.acquire(ctx); err != nil {
		return err
	}
	defer w.d.release()
	if err := os.Remove(w.part); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	w.done = true
	w.d.prune(filepath.Dir(w.final))
	return nil
}

// PutContent implements driver.ContentPutter: one temporary file, synced
// and renamed into place, with no unfinished write left if it fails.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	return d.put(ctx, path, content, true, false)
}

// Create implements driver.Creator: the temporary file is linked into
// place, which fails when the path exists, so the content is whole the
// moment it is visible and only one of several Creates wins. Like
// PutScratch it does not sync: Berth's leases are what Create stores, and
// a crash of this host ends their holders too.
func (d *Driver) Create(ctx context.Context, path string, content []byte) error {
	return d.put(ctx, path, content, false, true)
}

// PutScratch implements driver.ScratchPutter: PutContent without its
// syncs, which are most of a small push's cost on a disk (an upload
// session's files are written by every request of it).
func (d *Driver) PutScratch(ctx context.Context, path string, content []byte) error {
	return d.put(ctx, path, content, false, false)
}

// put writes content to a temporary file and then renames it into place,
// or, exclusive, links it there, refusing an existing file.
func (d *Driver) put(ctx context.Context, path string, content []byte, durable, exclusive bool) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	final := d.full(path)
	dir := filepath.Dir(final)
	var f *os.File
	var created []string
	err := d.inDir(dir, &created, func() (err error) {
		f, err = createTemp(dir, filepath.Base(final))
		return err
	})
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
	case exclusive:
		err = os.Link(f.Name(), final)
		os.Remove(f.Name())
		if errors.Is(err, fs.ErrExist) {
			return driver.ErrExist
		}
	default:
		err = rename(f.Name(), final)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	if !durable {
		return nil
	}
	return d.syncDirs(dirsToSync(dir, created))
}

// Unfinished implements driver.UploadLister. A file system keeps no start
// time, so the time given is that of the last write, which is what tells
// an abandoned write from a slow one.
func (d *Driver) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	out := map[string]time.Time{}
	root := d.full(dir)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || !strings.HasSuffix(p, partialSuffix) {
			return ctx.Err()
		}
		fi, err := e.Info()
		if err != nil {
			return nil // finished or cancelled meanwhile
		}
		rel := filepath.ToSlash(strings.TrimSuffix(p, partialSuffix)[len(d.root):])
		if driver.ValidPath(rel) {
			out[rel] = fi.ModTime()
		}
		return nil
	})
	return out, err
}
