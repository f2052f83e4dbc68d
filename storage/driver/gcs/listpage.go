package gcs

import (
	"context"
	"fmt"
	"strings"

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
	q := listQuery{prefix: prefix, delimiter: "/", fields: "name,contentType"}
	if after != "" {
		q.startOffset = prefix + after
	}
	var names []string
	var last string
	size := driver.NextListSize(n+1, 0, 0)
	for page, err := range d.pages(ctx, q, &size) {
		if err != nil {
			return nil, false, fmt.Errorf("gcs: list %s: %w", dir, err)
		}
		for _, o := range page.Items {
			if o.Name != prefix && o.ContentType != legacySessionContentType {
				// Neither a "folder" placeholder nor Distribution's
				// unfinished upload (see List).
				names = appendAfter(names, strings.TrimPrefix(o.Name, prefix), after)
			}
			last = max(last, o.Name)
		}
		for _, sub := range page.Prefixes {
			if !d.isSidecar(sub) {
				names = appendAfter(names, strings.TrimSuffix(strings.TrimPrefix(sub, prefix), "/"), after)
			}
			last = max(last, sub)
		}
		// Stop at a page boundary of the listing, once the page is known.
		if driver.KeyPageComplete(names, n+1, prefix, after, last) {
			break
		}
		size = driver.NextListSize(n+1, len(names), size)
	}
	return driver.KeyPage(ctx, d, dir, after, names, n, false)
}

// appendAfter appends name when it sorts after after.
func appendAfter(names []string, name, after string) []string {
	if name != "" && name > after {
		names = append(names, name)
	}
	return names
}
