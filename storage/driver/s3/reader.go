package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver/internal/ranged"
)

// openRanges starts reading the object at key from offset. A parallel read
// (see package ranged) asks for its first chunk, learns the object's size
// and ETag from the answer, and pins the ranges after it to that ETag with
// If-Match. Objects no larger than a chunk, and readers with
// readconcurrency 1, cost one GET.
func (d *Driver) openRanges(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: d.bucket, Key: aws.String(key)}
	parallel := d.reads.Parallel()
	switch {
	case parallel:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+d.reads.Chunk()-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := d.getObject(ctx, in)
	if err != nil {
		return nil, err
	}
	if !parallel {
		return out.Body, nil
	}
	size, ok := ranged.TotalSize(aws.ToString(out.ContentRange))
	if !ok {
		return out.Body, nil // not a range: all of it is in this response
	}
	etag := out.ETag
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		out, err := d.getObject(ctx, &s3.GetObjectInput{
			Bucket: d.bucket, Key: aws.String(key), IfMatch: etag,
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
		})
		if err != nil {
			return nil, err
		}
		return out.Body, nil
	}
	return d.reads.Reader(ctx, out.Body, offset, aws.ToInt64(out.ContentLength), size, open), nil
}
