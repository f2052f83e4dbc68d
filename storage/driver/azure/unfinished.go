package azure

import (
	"context"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Unfinished implements driver.UploadLister. A blob that has uncommitted
// blocks and no committed content shows in a listing that includes
// uncommitted blobs and not in one that does not; both listings come in
// name order, so they are walked side by side and memory stays one page
// each. The start time is read from the block IDs.
//
// A write over a path that already holds a committed file is not found
// this way; Berth's upload paths are fresh, so that costs nothing there.
func (d *Driver) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	prefix := d.dirPrefix(dir)
	all := newNameIter(d.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  &prefix,
		Include: container.ListBlobsInclude{UncommittedBlobs: true},
	}))
	committed := newNameIter(d.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix}))
	out := map[string]time.Time{}
	for {
		name, ok, err := all.next(ctx)
		if err != nil {
			return nil, mapErr("unfinished", dir, err)
		}
		if !ok {
			return out, nil
		}
		c, err := committed.seek(ctx, name)
		if err != nil {
			return nil, mapErr("unfinished", dir, err)
		}
		if c == name {
			continue
		}
		p, ok := relPath(dir, prefix, name)
		if !ok {
			continue
		}
		pw, err := d.pendingWrite(ctx, name)
		if err != nil {
			return nil, mapErr("unfinished", dir, err)
		}
		if pw.exists && !pw.foreign {
			out[p] = pw.started
		}
	}
}

// nameIter yields the blob names of a flat listing one at a time.
type nameIter struct {
	pager *runtime.Pager[container.ListBlobsFlatResponse]
	names []string
	head  string // the name seek stopped at, "" when none
	done  bool
}

func newNameIter(p *runtime.Pager[container.ListBlobsFlatResponse]) *nameIter {
	return &nameIter{pager: p}
}

func (it *nameIter) next(ctx context.Context) (string, bool, error) {
	for len(it.names) == 0 {
		if it.done || !it.pager.More() {
			it.done = true
			return "", false, nil
		}
		page, err := it.pager.NextPage(ctx)
		if err != nil {
			return "", false, err
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name != nil {
				it.names = append(it.names, *b.Name)
			}
		}
	}
	n := it.names[0]
	it.names = it.names[1:]
	return n, true, nil
}

// seek advances to the first name not before target and returns it, or ""
// at the end of the listing.
func (it *nameIter) seek(ctx context.Context, target string) (string, error) {
	for it.head == "" || it.head < target {
		n, ok, err := it.next(ctx)
		if err != nil || !ok {
			it.head = ""
			return "", err
		}
		it.head = n
	}
	return it.head, nil
}
