package gcs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/berth-registry/berth/storage/driver"
)

var _ driver.PageLister = (*Driver)(nil)

// ListPage implements driver.PageLister: the listing starts at the name
// after after (StartOffset) and stops once the page is known, so a page of
// a directory of a hundred thousand tags costs a request, not a hundred.
// GCS orders names bytewise, as S3 does (driver.KeyPageComplete). It
// lists n+1 names, the last of which tells whether more follow.
func (d *Driver) ListPage(ctx context.Context, dir, after string, n int) ([]string, bool, error) {
	prefix := d.dirKey(dir)
	q := &storage.Query{Prefix: prefix, Delimiter: "/"}
	if after != "" {
		q.StartOffset = prefix + after
	}
	if err := q.SetAttrSelection([]string{"Name", "ContentType"}); err != nil {
		return nil, false, err
	}
	it := d.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = driver.NextListSize(n+1, 0, 0)
	var names []string
	var last string
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("gcs: list %s: %w", dir, err)
		}
		key := attrs.Name
		name := ""
		switch {
		case attrs.Prefix != "":
			key = attrs.Prefix
			if !d.isSidecar(attrs.Prefix) {
				name = strings.TrimSuffix(strings.TrimPrefix(attrs.Prefix, prefix), "/")
			}
		case attrs.Name == prefix, attrs.ContentType == legacySessionContentType:
			// Not a file (see List).
		default:
			name = strings.TrimPrefix(attrs.Name, prefix)
		}
		last = max(last, key)
		if name != "" && name > after {
			names = append(names, name)
		}
		// Stop at a page boundary of the listing, once the page is known.
		if it.PageInfo().Remaining() == 0 {
			if driver.KeyPageComplete(names, n+1, prefix, after, last) {
				break
			}
			it.PageInfo().MaxSize = driver.NextListSize(n+1, len(names), it.PageInfo().MaxSize)
		}
	}
	return driver.KeyPage(ctx, d, dir, after, names, n, false)
}
