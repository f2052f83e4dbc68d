package swift

import (
	"context"

	"github.com/ncw/swift/v2"

	"github.com/berth-registry/berth/storage/driver"
)

// Walk implements driver.Walker with one flat, paginated listing of root's
// prefix. Swift lists names in byte order, where "a-b/x" precedes "a/x",
// so the files are sorted by path components (a walk visits "a" and all
// below it before "a-b") and the directories emitted as the names imply
// them.
func (d *Driver) Walk(ctx context.Context, root string, fn driver.WalkFunc) error {
	prefix := d.dirPrefix(root)
	objs, err := d.conn.ObjectsAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: prefix})
	if err != nil {
		return mapErr("walk", root, err)
	}
	files := make([]driver.FileInfo, 0, len(objs))
	for _, o := range objs {
		if p, ok := relPath(root, prefix, o.Name); ok {
			files = append(files, driver.FileInfo{Path: p, Size: o.Bytes, ModTime: o.LastModified})
		}
	}
	if len(files) == 0 && root != "/" {
		return pathErr("walk", root, driver.ErrNotFound)
	}
	return driver.WalkFiles(ctx, root, files, func(f driver.FileInfo) error {
		if !f.IsDir && f.Size == 0 {
			// A large object's manifest lists as empty; its size is in
			// its HEAD, asked only for the files the walk visits.
			if fi, err := d.Stat(ctx, f.Path); err == nil && !fi.IsDir {
				f.Size = fi.Size
			}
		}
		return fn(f)
	})
}
