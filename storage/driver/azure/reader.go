package azure

import (
	"bytes"
	"context"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged"
)

// Reader implements driver.Driver. A parallel read (see package ranged)
// asks for its first chunk, learns the blob's size and ETag from the
// answer, and pins the ranges after it to that ETag with If-Match, which
// Azure answers with 412 once the blob was replaced. Blobs no larger than
// a chunk, and readers with readconcurrency 1, cost one GET.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, pathErr("reader", path, driver.ErrInvalidOffset)
	}
	bc := d.c.NewBlobClient(d.name(path))
	opts := &blob.DownloadStreamOptions{}
	parallel := d.reads.Parallel()
	switch {
	case parallel:
		opts.Range = blob.HTTPRange{Offset: offset, Count: d.reads.Chunk()}
	case offset > 0:
		opts.Range = blob.HTTPRange{Offset: offset}
	}
	resp, err := bc.DownloadStream(ctx, opts)
	if err == nil {
		if !parallel {
			return resp.Body, nil
		}
		size, ok := ranged.TotalSize(deref(resp.ContentRange))
		if !ok || resp.ETag == nil || resp.ContentLength == nil {
			return resp.Body, nil // not a range: all of it is in this response
		}
		etag := *resp.ETag
		open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{
				Range: blob.HTTPRange{Offset: off, Count: n},
				AccessConditions: &blob.AccessConditions{
					ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag},
				},
			})
			if err != nil {
				return nil, mapErr("reader", path, err)
			}
			return resp.Body, nil
		}
		return d.reads.Reader(ctx, resp.Body, offset, *resp.ContentLength, size, open), nil
	}
	if !bloberror.HasCode(err, bloberror.InvalidRange) {
		return nil, mapErr("reader", path, err)
	}
	// Azure refuses a range that starts at the end as it does one past it.
	props, err := bc.GetProperties(ctx, nil)
	if err != nil {
		return nil, mapErr("reader", path, err)
	}
	if props.ContentLength != nil && offset == *props.ContentLength {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return nil, pathErr("reader", path, driver.ErrInvalidOffset)
}
