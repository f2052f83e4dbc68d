package azure

import (
	"context"
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
	return driver.WalkFiles(ctx, root, files, fn)
}

func deref[T int64 | string | time.Time](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
