package storage

import (
	"context"
	"path"

	"github.com/berth-registry/berth/storage/driver"
)

// tagPage lists up to n tags after last straight from the driver, in
// lexical order, and whether more follow. On an object store, which keeps
// no time for a directory and so no cached list (see sortedTags), a page
// then costs one listing from last (two sent together on S3), not a
// listing of every tag. A repository without tags gives
// driver.ErrNotFound (wrapped), as allTags does.
func (r *repository) tagPage(ctx context.Context, n int, last string) ([]string, bool, error) {
	paths, more, err := driver.ListPage(ctx, r.driver(), tagsDir(r.name), last, n)
	if err != nil {
		return nil, false, err
	}
	tags := make([]string, len(paths))
	for i, p := range paths {
		tags[i] = path.Base(p)
	}
	return tags, more, nil
}
