// Package filesystem is the storage driver for a local directory, laid out
// as CNCF Distribution's filesystem driver lays it out, so either program
// serves what the other wrote.
//
// An unfinished write lives beside its file as "<name>.partial~"; a '~' is
// never part of a driver path, so no path can name it and List and Walk
// skip it. Commit syncs the file, renames it into place and syncs the
// directory: a committed file survives a crash. Readers are *os.File values
// so that net/http can serve them with sendfile.
package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/berth-registry/berth/storage/driver"
)

// Name is the name the driver registers under.
const Name = "filesystem"

// Params is the driver's configuration section.
type Params struct {
	// RootDirectory holds everything the driver stores.
	RootDirectory string `yaml:"rootdirectory"`
	// MaxThreads bounds the filesystem calls in flight at once: each one
	// blocks an OS thread, and too many threads exhaust the process. Values
	// below 25 are raised to 25, as Distribution does.
	MaxThreads int `yaml:"maxthreads"`
}

const (
	defaultRoot       = "/var/lib/registry"
	defaultMaxThreads = 100
	minMaxThreads     = 25
)

func init() {
	driver.Register(Name, func(_ context.Context, params driver.Params) (driver.Driver, error) {
		p := Params{RootDirectory: defaultRoot, MaxThreads: defaultMaxThreads}
		if err := driver.DecodeParams(params, &p); err != nil {
			return nil, err
		}
		return New(p)
	})
	driver.RegisterCheck(Name, func(params driver.Params) error {
		var p Params
		return driver.DecodeParams(params, &p)
	})
}

// Driver stores files below a root directory.
type Driver struct {
	root string
	sem  chan struct{}
	// writeback starts the disk write of a range of a file being written
	// (startWriteback; tests watch it).
	writeback func(f *os.File, off, n int64) error
}

var (
	_ driver.Walker        = (*Driver)(nil)
	_ driver.FileOpener    = (*Driver)(nil)
	_ driver.ContentPutter = (*Driver)(nil)
	_ driver.UploadLister  = (*Driver)(nil)
	_ driver.ParentKeeper  = (*Driver)(nil)
)

// New returns a driver rooted at p.RootDirectory, creating it if need be.
// Wrap it with driver.Wrap (driver.Open does) before use: it trusts that
// every path it is given is valid.
func New(p Params) (*Driver, error) {
	if p.RootDirectory == "" {
		p.RootDirectory = defaultRoot
	}
	root, err := filepath.Abs(p.RootDirectory)
	if err != nil {
		return nil, fmt.Errorf("rootdirectory: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("rootdirectory: %w", err)
	}
	return &Driver{root: root, sem: make(chan struct{}, max(p.MaxThreads, minMaxThreads)), writeback: startWriteback}, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// DirTimes implements driver.DirTimer: creating or removing an entry moves
// its directory's modification time.
func (d *Driver) DirTimes() bool { return true }

// acquire takes one of the MaxThreads slots for a blocking call.
func (d *Driver) acquire(ctx context.Context) error {
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Driver) release() { <-d.sem }

// full maps a valid driver path to the file system.
func (d *Driver) full(path string) string {
	if path == "/" {
		return d.root
	}
	return d.root + filepath.FromSlash(path)
}

// notFound turns "no such file" and "a parent is a file" into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return driver.ErrNotFound
	}
	return err
}

// Reader implements driver.Driver. It returns an *os.File.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	f, size, err := d.open(path)
	if err != nil {
		return nil, err
	}
	if offset > size {
		f.Close()
		return nil, driver.ErrInvalidOffset
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// OpenFile implements driver.FileOpener.
func (d *Driver) OpenFile(ctx context.Context, path string) (*os.File, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	f, _, err := d.open(path)
	return f, err
}

// open opens the regular file at path and returns its size.
func (d *Driver) open(path string) (*os.File, int64, error) {
	f, err := openFile(d.full(path), os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, notFound(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, driver.ErrNotFound
	}
	return f, fi.Size(), nil
}

// Stat implements driver.Driver.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if err := d.acquire(ctx); err != nil {
		return driver.FileInfo{}, err
	}
	defer d.release()
	fi, err := os.Stat(d.full(path))
	if err != nil {
		return driver.FileInfo{}, notFound(err)
	}
	return info(path, fi), nil
}

func info(path string, fi fs.FileInfo) driver.FileInfo {
	out := driver.FileInfo{Path: path, ModTime: fi.ModTime(), IsDir: fi.IsDir()}
	if !out.IsDir {
		out.Size = fi.Size()
	}
	return out
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, dir string) ([]string, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	f, err := openFile(d.full(dir), os.O_RDONLY|oDirectory, 0)
	if err != nil {
		return nil, notFound(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, notFound(err)
	}
	out := make([]string, 0, len(names))
	for _, name := range names {
		// Unfinished writes and temporary files are not valid names.
		if p := driver.Join(dir, name); driver.ValidPath(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Move implements driver.Driver.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	from, to := d.full(src), d.full(dst)
	fi, err := os.Stat(from)
	if err != nil {
		return notFound(err)
	}
	if fi.IsDir() {
		return driver.ErrNotFound
	}
	return d.renameInto(from, to, nil)
}

// renameInto renames the file from to to, making to's directories as
// needed (created holds those the caller made already), syncs to's
// directory and the new ones' parents, and prunes from's directory if
// that left it empty.
func (d *Driver) renameInto(from, to string, created []string) error {
	err := d.inDir(filepath.Dir(to), &created, func() error { return rename(from, to) })
	if err != nil {
		if _, serr := os.Lstat(from); errors.Is(serr, fs.ErrNotExist) {
			return driver.ErrNotFound // moved or deleted meanwhile
		}
		return err
	}
	if err := d.syncDirs(dirsToSync(filepath.Dir(to), created)); err != nil {
		return err
	}
	d.prune(filepath.Dir(from))
	return nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, path string) error {
	return d.delete(ctx, path, true)
}

// DeleteKeepParent implements driver.ParentKeeper: path's directory stays
// when path was its last entry. A directory removed and made again costs
// more than the two calls: ext4 without a journal, allocating an inode,
// passes over every inode freed in the last minute, so each one a push
// frees makes the creations after it dearer.
func (d *Driver) DeleteKeepParent(ctx context.Context, path string) error {
	return d.delete(ctx, path, false)
}

func (d *Driver) delete(ctx context.Context, path string, prune bool) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	full := d.full(path)
	if path != "/" {
		if err := removeAll(full); err != nil {
			return notFound(err)
		}
		if prune {
			d.prune(filepath.Dir(full))
		}
		return nil
	}
	// Keep the root itself: it may be a mount point.
	entries, err := os.ReadDir(full)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return driver.ErrNotFound
	}
	for _, e := range entries {
		if err := removeAll(filepath.Join(full, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
