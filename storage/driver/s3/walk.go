package s3

import (
	"context"
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
	err := d.listPages(ctx, &s3.ListObjectsV2Input{Bucket: d.bucket, Prefix: aws.String(prefix)}, func(page *s3.ListObjectsV2Output) error {
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if !driver.ValidPath("/" + rel) {
				continue // the state directory, "dir/" markers, foreign keys
			}
			files = append(files, driver.FileInfo{
				Path: driver.Join(root, rel), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified),
			})
		}
		return nil
	})
	if err != nil {
		return mapErr("walk", root, err)
	}
	if len(files) == 0 && root != "/" {
		return pathErr("walk", root, driver.ErrNotFound)
	}
	return driver.WalkFiles(ctx, root, files, fn)
}
