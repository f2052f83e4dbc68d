package azure

import (
	"context"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/berth-registry/berth/storage/driver"
)

var _ driver.PageLister = (*Driver)(nil)

// maxListResults is the most entries one List Blobs request returns.
const maxListResults = 5000

// ListPage implements driver.PageLister: the listing starts at the name
// after (List Blobs' startFrom, service version 2026-02-06) and stops once
// the page is known, so a page of a directory of a hundred thousand tags
// costs one request, not twenty.
//
// The marker of List Blobs is opaque and cannot be built from a name;
// startFrom can, and is inclusive, so the entry named after itself (if
// any) comes back and is dropped. Azure orders names bytewise, as S3 does
// (driver.KeyPageComplete). A service that ignores startFrom (an Azurite
// older than 3.37) lists from the first name: the page is still exact,
// only dearer. It lists n+1 names, the last of which tells whether more
// follow, and after's own entry.
func (d *Driver) ListPage(ctx context.Context, dir, after string, n int) ([]string, bool, error) {
	prefix := d.dirPrefix(dir)
	opts := &container.ListBlobsHierarchyOptions{Prefix: &prefix, MaxResults: ptr(int32(min(n+2, maxListResults)))}
	if after != "" {
		opts.StartFrom = ptr(prefix + after)
	}
	var names []string
	var last string // the greatest name or prefix listed so far
	take := func(key string) {
		last = max(last, key)
		name := strings.TrimSuffix(strings.TrimPrefix(key, prefix), "/")
		if name != "" && name > after && driver.ValidPath("/"+name) {
			names = append(names, name)
		}
	}
	for {
		page, err := d.c.NewListBlobsHierarchyPager("/", opts).NextPage(ctx)
		if err != nil {
			return nil, false, mapErr("list", dir, err)
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				take(*p.Name)
			}
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name != nil {
				take(*b.Name)
			}
		}
		if page.NextMarker == nil || *page.NextMarker == "" || driver.KeyPageComplete(names, n+1, prefix, after, last) {
			break
		}
		// The page waits for a shorter name whose keys sort after many
		// longer ones ("v1/" after every "v1-…/"): each further request
		// asks for twice as many, so that wait costs a few requests, not
		// one per n names.
		opts.Marker = page.NextMarker
		opts.MaxResults = ptr(min(2**opts.MaxResults, maxListResults))
	}
	return driver.KeyPage(ctx, d, dir, after, names, n, false)
}
