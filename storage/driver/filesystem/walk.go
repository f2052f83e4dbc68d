package filesystem

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/berth-registry/berth/storage/driver"
)

// Walk implements driver.Walker with one directory read per directory,
// instead of a List and a Stat per entry.
func (d *Driver) Walk(ctx context.Context, root string, fn driver.WalkFunc) error {
	entries, err := d.readDir(ctx, root)
	if err != nil {
		return err
	}
	return d.walk(ctx, entries, fn)
}

func (d *Driver) walk(ctx context.Context, entries []driver.FileInfo, fn driver.WalkFunc) error {
	for _, fi := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			if errors.Is(err, driver.ErrSkipDir) {
				continue
			}
			return err
		}
		if !fi.IsDir {
			continue
		}
		children, err := d.readDir(ctx, fi.Path)
		if errors.Is(err, driver.ErrNotFound) {
			continue // deleted meanwhile, perhaps by fn
		}
		if err != nil {
			return err
		}
		if err := d.walk(ctx, children, fn); err != nil {
			return err
		}
	}
	return nil
}

// readDir describes the entries of dir with a valid name, in lexical
// order. It holds a thread slot only while it reads, never while fn runs,
// so fn may call the driver.
func (d *Driver) readDir(ctx context.Context, dir string) ([]driver.FileInfo, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	entries, err := os.ReadDir(d.full(dir))
	if err != nil {
		return nil, notFound(err)
	}
	out := make([]driver.FileInfo, 0, len(entries))
	for _, e := range entries {
		p := driver.Join(dir, e.Name())
		if !driver.ValidPath(p) {
			continue // unfinished writes and temporary files
		}
		var fi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(d.full(p))
		} else {
			fi, err = e.Info()
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info(p, fi))
	}
	return out, nil
}
