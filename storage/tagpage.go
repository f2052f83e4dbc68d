package storage

import (
	"context"
	"path"

	"github.com/berth-registry/berth/storage/driver"
)

// tagPage lists up to n tags after last straight from the driver, in
// lexical order. On an object store, which keeps no time for a directory
// and so no cached list (see sortedTags), a page then costs one listing
// from last, not a listing of every tag. A repository without tags gives
// driver.ErrNotFound (wrapped), as allTags does.
func (r *repository) tagPage(ctx context.Context, n int, last string) ([]string, error) {
	paths, err := driver.ListPage(ctx, r.driver(), tagsDir(r.name), last, n)
	if err != nil {
		return nil, err
	}
	tags := make([]string, len(paths))
	for i, p := range paths {
		tags[i] = path.Base(p)
	}
	return tags, nil
}
