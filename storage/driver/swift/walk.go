package swift

import (
	"context"
	"slices"
	"strings"

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
	slices.SortFunc(files, func(a, b driver.FileInfo) int { return treeCompare(a.Path, b.Path) })
	start := len(root) + 1
	if root == "/" {
		start = 1
	}
	var last, skipped string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if skipped != "" && strings.HasPrefix(f.Path, skipped+"/") {
			continue
		}
		skipped = ""
		if f.Size == 0 {
			// A large object's manifest lists as empty; its size is in
			// its HEAD.
			if fi, err := d.Stat(ctx, f.Path); err == nil && !fi.IsDir {
				f.Size = fi.Size
			}
		}
		for i := start; i < len(f.Path) && skipped == ""; i++ {
			if f.Path[i] != '/' {
				continue
			}
			dir := f.Path[:i]
			if last == dir || strings.HasPrefix(last, dir+"/") {
				continue
			}
			last = dir
			if err := fn(driver.FileInfo{Path: dir, IsDir: true}); err == driver.ErrSkipDir {
				skipped = dir
			} else if err != nil {
				return err
			}
		}
		if skipped != "" {
			continue
		}
		if err := fn(f); err != nil && err != driver.ErrSkipDir {
			return err
		}
	}
	return nil
}

// treeCompare is byte order with '/' before every other byte.
func treeCompare(a, b string) int {
	for i := range min(len(a), len(b)) {
		x, y := a[i], b[i]
		switch {
		case x == y:
			continue
		case x == '/':
			return -1
		case y == '/':
			return 1
		case x < y:
			return -1
		default:
			return 1
		}
	}
	return len(a) - len(b)
}
