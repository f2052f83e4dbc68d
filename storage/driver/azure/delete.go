package azure

import (
	"context"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/storage/driver"
)

// deleteParallel bounds the deletions in flight for one recursive Delete.
// Azure's batch API takes 256 deletions a request but is not offered by
// every server that speaks the Blob API; parallel single deletions are.
const deleteParallel = 16

var deleteOpts = &blob.DeleteOptions{DeleteSnapshots: ptr(blob.DeleteSnapshotsOptionTypeInclude)}

// Delete implements driver.Driver. A file is one request; a directory is a
// flat listing of its prefix, unfinished writes included, each blob
// deleted with up to deleteParallel requests in flight.
func (d *Driver) Delete(ctx context.Context, path string) error {
	if path != "/" {
		_, err := d.c.NewBlobClient(d.name(path)).Delete(ctx, deleteOpts)
		if err == nil {
			return nil
		}
		if !isNotFound(err) {
			return mapErr("delete", path, err)
		}
	}
	prefix := d.dirPrefix(path)
	pager := d.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  &prefix,
		Include: container.ListBlobsInclude{UncommittedBlobs: true},
	})
	var found atomic.Bool
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return mapErr("delete", path, err)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(deleteParallel)
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			name := *b.Name
			g.Go(func() error {
				_, err := d.c.NewBlobClient(name).Delete(gctx, deleteOpts)
				if err == nil {
					found.Store(true)
					return nil
				}
				if !isNotFound(err) {
					return err
				}
				// Listed yet not there: a blob with uncommitted blocks
				// only, which Delete Blob does not see.
				return d.discardBlocks(gctx, name)
			})
		}
		if err := g.Wait(); err != nil {
			return mapErr("delete", path, err)
		}
	}
	if !found.Load() {
		return pathErr("delete", path, driver.ErrNotFound)
	}
	return nil
}

// discardBlocks drops the uncommitted blocks of the blob name. Azure keeps
// them a week unless the blob is committed or deleted, and an uncommitted
// blob cannot be deleted: committing an empty block list makes it an empty
// blob, which can.
func (d *Driver) discardBlocks(ctx context.Context, name string) error {
	bb := d.c.NewBlockBlobClient(name)
	if _, err := bb.CommitBlockList(ctx, nil, nil); err != nil {
		return err
	}
	if _, err := bb.Delete(ctx, deleteOpts); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
