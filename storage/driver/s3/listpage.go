package s3

import (
	"context"
	"slices"
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
// S3 orders keys bytewise, and a child directory's keys carry a "/"
// after its name, so a name sorts after every name it is a prefix of
// followed by a byte below "/" ("v1/" comes after "v1-rc/" and "v1.2/",
// though "v1" sorts first). The listing therefore goes on until it has
// passed every such shorter name that could belong on the page.
func (d *Driver) ListPage(ctx context.Context, dir, after string, n int) ([]string, error) {
	prefix := d.dirPrefix(dir)
	in := &s3.ListObjectsV2Input{
		Bucket: d.bucket, Prefix: aws.String(prefix), Delimiter: aws.String("/"),
		MaxKeys: aws.Int32(int32(min(n+1, 1000))),
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
		if !aws.ToBool(page.IsTruncated) || pageKnown(names, n, prefix, after, last) {
			break
		}
		in.ContinuationToken = page.NextContinuationToken
	}
	if len(names) == 0 && dir != "/" {
		// Nothing after after: is the directory there at all (List's
		// ErrNotFound)? One more request, on the last page only.
		fi, err := d.Stat(ctx, dir)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir {
			return nil, pathErr("list", dir, driver.ErrNotFound)
		}
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = driver.Join(dir, n)
	}
	return driver.PageOf(paths, after, n), nil
}

// pageKnown tells whether the first n names in lexical order are among
// those listed, given that the listing reached the key last: every name
// still to come sorts after last, so the only ones that could still rank
// among the first n are shorter names of listed ones (see ListPage).
func pageKnown(names []string, n int, prefix, after, last string) bool {
	if len(names) < n {
		return false
	}
	cutoff := nth(names, n)
	for _, x := range names {
		for i := 0; i < len(x); i++ {
			if x[i] >= '/' {
				continue
			}
			y := x[:i]
			if y > after && y < cutoff && prefix+y+"/" > last {
				return false
			}
		}
	}
	return true
}

// nth is the n-th smallest of names (1-based), which holds at least n.
func nth(names []string, n int) string {
	s := slices.Clone(names)
	slices.Sort(s)
	return s[n-1]
}
