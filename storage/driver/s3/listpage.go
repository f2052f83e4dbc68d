package s3

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver"
)

var _ driver.PageLister = (*Driver)(nil)

// ListPage implements driver.PageLister: the listing starts at the key
// after the name (StartAfter) and stops once the page is known, so a page
// of a directory of a hundred thousand tags costs one request, not a
// hundred.
//
// S3 orders keys bytewise, so the listing goes on until the page is
// known (driver.KeyPageComplete).
func (d *Driver) ListPage(ctx context.Context, dir, after string, n int) ([]string, error) {
	prefix := d.dirPrefix(dir)
	in := &s3.ListObjectsV2Input{
		Bucket: d.bucket, Prefix: aws.String(prefix), Delimiter: aws.String("/"),
		MaxKeys: aws.Int32(int32(driver.NextListSize(n, 0, 0))),
	}
	if after != "" {
		in.StartAfter = aws.String(prefix + after)
	}
	var names []string
	var last string // the greatest key or common prefix listed so far
	for {
		page, err := d.c.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, mapErr("list", dir, err)
		}
		take := func(key string, dirMark bool) {
			last = max(last, key)
			n := strings.TrimPrefix(key, prefix)
			if dirMark {
				n = strings.TrimSuffix(n, "/")
			}
			if validName(n) && n > after {
				names = append(names, n)
			}
		}
		for _, o := range page.Contents {
			take(aws.ToString(o.Key), false)
		}
		for _, p := range page.CommonPrefixes {
			take(aws.ToString(p.Prefix), true)
		}
		if !aws.ToBool(page.IsTruncated) || driver.KeyPageComplete(names, n, prefix, after, last) {
			break
		}
		in.ContinuationToken = page.NextContinuationToken
		in.MaxKeys = aws.Int32(int32(driver.NextListSize(n, len(names), int(aws.ToInt32(in.MaxKeys)))))
	}
	return driver.KeyPage(ctx, d, dir, after, names, n)
}
