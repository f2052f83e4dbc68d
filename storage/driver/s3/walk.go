package s3

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver"
)

// Walk implements driver.Walker with one flat, paginated listing of the
// prefix, emitting the directories the keys imply.
//
// S3 lists keys in byte order, where "a-b" and "a.b" sort before "a/x";
// the walk order (parents before children, siblings in lexical order) puts
// "a" and its subtree first. The entries are therefore collected and
// sorted component-wise before fn sees them: memory grows with the number
// of files below root (about 100 bytes each), not with their sizes.
func (d *Driver) Walk(ctx context.Context, root string, fn driver.WalkFunc) error {
	prefix := d.dirPrefix(root)
	var files []driver.FileInfo
	pages := s3.NewListObjectsV2Paginator(d.c, &s3.ListObjectsV2Input{Bucket: d.bucket, Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return mapErr("walk", root, err)
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if !driver.ValidPath("/" + rel) {
				continue // the state directory, "dir/" markers, foreign keys
			}
			files = append(files, driver.FileInfo{
				Path: driver.Join(root, rel), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified),
			})
		}
	}
	if len(files) == 0 && root != "/" {
		return pathErr("walk", root, driver.ErrNotFound)
	}
	slices.SortFunc(files, func(a, b driver.FileInfo) int { return comparePaths(a.Path, b.Path) })

	// Emit each file after the directories between root and it that the
	// previous file did not already imply. skip is a directory whose
	// subtree fn asked to skip.
	var prev, skip string
	base := len(root)
	if root == "/" {
		base = 0
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if skip != "" && strings.HasPrefix(f.Path, skip+"/") {
			continue
		}
		skip = ""
		for i := base + 1; i < len(f.Path); i++ {
			if f.Path[i] != '/' {
				continue
			}
			dir := f.Path[:i]
			if strings.HasPrefix(prev, dir+"/") {
				continue // already emitted
			}
			err := fn(driver.FileInfo{Path: dir, IsDir: true})
			if err == driver.ErrSkipDir {
				skip = dir
				break
			}
			if err != nil {
				return err
			}
		}
		prev = f.Path
		if skip != "" {
			continue
		}
		if err := fn(f); err != nil && err != driver.ErrSkipDir {
			return err
		}
	}
	return nil
}

// comparePaths orders paths component by component, which is byte order
// with '/' lower than every other character.
func comparePaths(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}
