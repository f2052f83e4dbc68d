package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Row S2b is the floor of S2 on this store: what any registry that keeps
// Distribution's layout must at least spend there, measured with the S3
// API alone through the same shaped link. The bytes of each PATCH go as
// one multipart upload's parts, those of a chunk together (as Berth's s3
// writer cuts a PATCH whose length it knows) and the chunks one after the
// other (a client waits for each PATCH's answer before the next); then the
// upload is completed and, the digest being known only now, copied
// server-side to the blob's key. S2c is that complete and copy alone.

// floorWriteConcurrency is the s3 driver's default writeconcurrency: the
// most parts one chunk is cut into.
const floorWriteConcurrency = 8

// floorMinPart is S3's smallest non-final part.
const floorMinPart = 5 << 20

// chunkParts cuts a chunk of n bytes as the s3 writer plans it: k =
// min(writeconcurrency, n / 5 MiB) parts (one at least), k-1 of n/k bytes
// and the last the rest.
func chunkParts(n int64) []int64 {
	k := max(min(floorWriteConcurrency, n/floorMinPart), 1)
	parts := make([]int64, k)
	for i := range parts {
		parts[i] = n / k
	}
	parts[k-1] = n - (k-1)*(n/k)
	return parts
}

// floorKeys are where the floor's upload goes and where it is copied to,
// apart from the registry's layout.
const (
	floorUploadKey = "floor/uploads/data"
	floorBlobKey   = "floor/blobs/data"
)

// rawChunkedPush sends v to st's bucket through the shaped link as S2b
// does and returns its throughput in MB/s and the time of the complete
// and copy in seconds.
func rawChunkedPush(ctx context.Context, st *storageRoot, v *variant, chunk int64) (mbps, finish float64, err error) {
	c := st.shaped
	bucket := aws.String("registry")
	opt := floorOpt
	start := time.Now()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(floorUploadKey)}, opt)
	if err != nil {
		return 0, 0, fmt.Errorf("floor: create upload: %w", err)
	}
	var done []types.CompletedPart
	size := v.size()
	for off := int64(0); off < size; off += chunk {
		parts := chunkParts(min(chunk, size-off))
		spans := make([][2]int64, len(parts))
		at := off
		for i, n := range parts {
			spans[i] = [2]int64{at, n}
			at += n
		}
		got, err := sendParts(ctx, c, floorUploadKey, up.UploadId, v, spans, len(done)+1, len(spans))
		if err != nil {
			return 0, 0, err
		}
		done = append(done, got...)
	}
	finishStart := time.Now()
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(floorUploadKey),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}, opt); err != nil {
		return 0, 0, fmt.Errorf("floor: complete upload: %w", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bucket, Key: aws.String(floorBlobKey),
		CopySource: aws.String("registry/" + floorUploadKey)}, opt); err != nil {
		return 0, 0, fmt.Errorf("floor: copy: %w", err)
	}
	end := time.Now()
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String(floorBlobKey)}, opt)
	if err != nil {
		return 0, 0, fmt.Errorf("floor: stat the copy: %w", err)
	}
	if n := aws.ToInt64(head.ContentLength); n != size {
		return 0, 0, fmt.Errorf("floor: copy holds %d bytes, want %d", n, size)
	}
	return float64(size) / end.Sub(start).Seconds() / mb, end.Sub(finishStart).Seconds(), nil
}

// measureChunkedPushWithFloor is S2, and on S3 and Azure its floor (S2b,
// S2c) measured after it on the same store.
func measureChunkedPushWithFloor(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	vals, err := measureChunkedPush(ctx, h, s, c)
	if err != nil {
		return vals, err
	}
	floor := rawChunkedPush
	switch {
	case s.stor.shaped != nil:
	case s.stor.shapedAzure != nil:
		floor = rawChunkedPushAzure
	default:
		return vals, nil
	}
	mbps, finish, err := floor(ctx, s.stor, h.big.variant(2), h.sz.chunk)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h.log, "bench:     %s's store, straight: %.1f MB/s, commit + copy %.2f s\n", s.name, mbps, finish)
	return append(vals, mbps, finish), nil
}

// chunkedPushRows are S2's rows: on S3 and Azure with its floor.
func (h *harness) chunkedPushRows() []row {
	rows := []row{{"S2", fmt.Sprintf("push one %s blob in %s PATCHes", sizeText(h.sz.big), sizeText(h.sz.chunk)), "MB/s", throughput, 3}}
	switch h.backend {
	case "s3":
		parts := chunkParts(h.sz.chunk)
		return append(rows,
			row{"S2b", fmt.Sprintf("the same straight to the store through the same link: one multipart upload, each chunk as %d parts sent together, then complete + copy to the blob key", len(parts)), "MB/s", info, 0},
			row{"S2c", "S2b's complete + copy alone", "s", info, 0})
	case "azure":
		blocks := chunkBlocks(h.sz.chunk)
		return append(rows,
			row{"S2b", fmt.Sprintf("the same straight to the store through the same link: one block blob, each chunk as %d blocks staged together, then Put Block List + copy to the blob key", len(blocks)), "MB/s", info, 0},
			row{"S2c", "S2b's Put Block List + copy alone", "s", info, 0})
	}
	return rows
}
