package azure

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/berth-registry/berth/storage/driver"
)

// Walk implements driver.Walker with one flat, paginated listing of root's
// prefix; directories are the prefixes the blob names imply.
//
// Azure lists names in byte order, in which "a-b/x" comes before "a/x",
// while a walk visits "a" and all below it before its sibling "a-b". The
// files are therefore gathered and sorted by path components first: the
// memory is a few dozen bytes per file below root.
func (d *Driver) Walk(ctx context.Context, root string, fn driver.WalkFunc) error {
	prefix := d.dirPrefix(root)
	pager := d.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	var files []driver.FileInfo
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return mapErr("walk", root, err)
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			p, ok := relPath(root, prefix, *b.Name)
			if !ok {
				continue
			}
			fi := driver.FileInfo{Path: p}
			if b.Properties != nil {
				fi.Size = deref(b.Properties.ContentLength)
				fi.ModTime = deref(b.Properties.LastModified)
			}
			files = append(files, fi)
		}
	}
	if len(files) == 0 && root != "/" {
		return pathErr("walk", root, driver.ErrNotFound)
	}
	slices.SortFunc(files, func(a, b driver.FileInfo) int { return treeCompare(a.Path, b.Path) })
	return emitTree(ctx, root, files, fn)
}

// emitTree calls fn for each file, preceded by the directories between
// root and it that no earlier file implied, honouring ErrSkipDir.
func emitTree(ctx context.Context, root string, files []driver.FileInfo, fn driver.WalkFunc) error {
	start := len(root) + 1 // index after "root/"
	if root == "/" {
		start = 1
	}
	var last, skipped string // last emitted directory; directory being skipped
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if skipped != "" && strings.HasPrefix(f.Path, skipped+"/") {
			continue
		}
		skipped = ""
		// Emit every directory on the way to f not already below last.
		skip := false
		for i := start; i < len(f.Path); i++ {
			if f.Path[i] != '/' {
				continue
			}
			dir := f.Path[:i]
			if last == dir || strings.HasPrefix(last, dir+"/") {
				continue
			}
			last = dir
			if err := fn(driver.FileInfo{Path: dir, IsDir: true}); err != nil {
				if err == driver.ErrSkipDir {
					skipped, skip = dir, true
					break
				}
				return err
			}
		}
		if skip {
			continue
		}
		if err := fn(f); err != nil && err != driver.ErrSkipDir {
			return err
		}
	}
	return nil
}

// treeCompare orders paths as a walk visits them: byte order in which '/'
// sorts before every other byte, so a directory's subtree comes before
// its siblings whose names extend its own.
func treeCompare(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		switch {
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

func deref[T int64 | time.Time](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
