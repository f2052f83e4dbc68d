package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Row S1b is the floor of S1 on this store, as S2b is S2's: the same blob
// sent with the S3 API alone through the same shaped link, as fast as the
// store takes it with as many parts in flight as Berth's s3 driver keeps
// by default (writeconcurrency 8, parts of chunksize 10 MiB), one after
// the other as each lands (a streamed PATCH's length is unknown, so
// there is no round to plan); then the upload is completed and, the
// digest being known only now, copied server-side to the blob's key as
// both registries' drivers copy an object above multipartcopythresholdsize
// (32 MiB): parts of multipartcopychunksize (32 MiB), all at once. S1c is
// that complete and copy alone. Measured right after S1 on the same
// store, so that Berth's ratio to it reads apart from the machine's load.

// floorPartSize is the s3 driver's default chunksize: the size of a part.
const floorPartSize = 10 << 20

// floorCopyPart is the s3 driver's default multipartcopychunksize.
const floorCopyPart = 32 << 20

// floorStreamKeys are where S1b's upload goes and where it is copied to.
const (
	floorStreamUploadKey = "floor/uploads/streamed"
	floorStreamBlobKey   = "floor/blobs/streamed"
)

// streamParts cuts n bytes into parts of part bytes, the last the rest:
// the offset and length of each.
func streamParts(n, part int64) [][2]int64 {
	var out [][2]int64
	for off := int64(0); off < n; off += part {
		out = append(out, [2]int64{off, min(part, n-off)})
	}
	if len(out) == 0 {
		out = append(out, [2]int64{0, 0})
	}
	return out
}

// floorOpt asks for checksums only where S3 demands them, as the s3
// driver sends.
func floorOpt(o *s3.Options) {
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
}

// rawStreamedPush sends v to st's bucket through the shaped link as S1b
// does and returns its throughput in MB/s and the time of the complete
// and copy in seconds.
func rawStreamedPush(ctx context.Context, st *storageRoot, v *variant) (mbps, finish float64, err error) {
	c := st.shaped
	bucket := aws.String("registry")
	start := time.Now()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(floorStreamUploadKey)}, floorOpt)
	if err != nil {
		return 0, 0, fmt.Errorf("floor: create upload: %w", err)
	}
	size := v.size()
	parts := streamParts(size, floorPartSize)
	done, err := sendParts(ctx, c, floorStreamUploadKey, up.UploadId, v, parts, 1, floorWriteConcurrency)
	if err != nil {
		return 0, 0, err
	}
	finishStart := time.Now()
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(floorStreamUploadKey),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}, floorOpt); err != nil {
		return 0, 0, fmt.Errorf("floor: complete upload: %w", err)
	}
	if err := rawCopyMultipart(ctx, c, floorStreamUploadKey, floorStreamBlobKey, size); err != nil {
		return 0, 0, err
	}
	end := time.Now()
	if err := checkSize(ctx, c, floorStreamBlobKey, size); err != nil {
		return 0, 0, err
	}
	return float64(size) / end.Sub(start).Seconds() / mb, end.Sub(finishStart).Seconds(), nil
}

// sendParts uploads spans of v (offset and length each) as the parts
// first, first+1, … of the multipart upload id at key, at most inFlight
// at once, each as soon as one lands, and returns them in order.
func sendParts(ctx context.Context, c *s3.Client, key string, id *string, v io.ReaderAt, spans [][2]int64, first, inFlight int) ([]types.CompletedPart, error) {
	done := make([]types.CompletedPart, len(spans))
	errs := make([]error, len(spans))
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i, p := range spans {
		sem <- struct{}{}
		num := aws.Int32(int32(first + i))
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("registry"), Key: aws.String(key),
				UploadId: id, PartNumber: num, Body: io.NewSectionReader(v, p[0], p[1]), ContentLength: aws.Int64(p[1])}, floorOpt)
			if err != nil {
				errs[i] = fmt.Errorf("floor: part %d: %w", *num, err)
				return
			}
			done[i] = types.CompletedPart{ETag: out.ETag, PartNumber: num}
		})
	}
	wg.Wait()
	return done, errors.Join(errs...)
}

// rawCopyMultipart copies the size bytes at src to dst in parts of
// floorCopyPart, all at once, as the s3 driver's Move does.
func rawCopyMultipart(ctx context.Context, c *s3.Client, src, dst string, size int64) error {
	bucket := aws.String("registry")
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(dst)}, floorOpt)
	if err != nil {
		return fmt.Errorf("floor: create copy: %w", err)
	}
	parts := streamParts(size, floorCopyPart)
	done := make([]types.CompletedPart, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		num := aws.Int32(int32(i + 1))
		wg.Go(func() {
			out, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: bucket, Key: aws.String(dst),
				UploadId: up.UploadId, PartNumber: num, CopySource: aws.String("registry/" + src),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", p[0], p[0]+p[1]-1))}, floorOpt)
			if err != nil {
				errs[i] = fmt.Errorf("floor: copy part %d: %w", *num, err)
				return
			}
			done[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: num}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(dst),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}, floorOpt); err != nil {
		return fmt.Errorf("floor: complete copy: %w", err)
	}
	return nil
}

// checkSize fails unless the object at key holds size bytes.
func checkSize(ctx context.Context, c *s3.Client, key string, size int64) error {
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("registry"), Key: aws.String(key)}, floorOpt)
	if err != nil {
		return fmt.Errorf("floor: stat %s: %w", key, err)
	}
	if n := aws.ToInt64(head.ContentLength); n != size {
		return fmt.Errorf("floor: %s holds %d bytes, want %d", key, n, size)
	}
	return nil
}

// rawCopyObject times one CopyObject of the size bytes at src, for the
// log: how the store's copy in one request compares with S1c's.
func rawCopyObject(ctx context.Context, c *s3.Client, src, dst string, size int64) (float64, error) {
	start := time.Now()
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("registry"), Key: aws.String(dst),
		CopySource: aws.String("registry/" + src)}, floorOpt); err != nil {
		return 0, fmt.Errorf("floor: copy object: %w", err)
	}
	secs := time.Since(start).Seconds()
	return secs, checkSize(ctx, c, dst, size)
}

// measureStreamedPush is S1: one push of a big blob in one streamed PATCH.
func measureStreamedPush(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	v := h.big.variant(3)
	start := time.Now()
	put, err := c.pushStreamed(ctx, "bench/streamed", v.d, v.reader())
	if err != nil {
		return nil, err
	}
	mbps := float64(v.size()) / time.Since(start).Seconds() / mb
	// The PUT is the complete and copy S1c times on the floor, with the
	// registry's own requests around them.
	fmt.Fprintf(h.log, "bench:     %s's PUT: %.2f s\n", s.name, put.Seconds())
	return []float64{mbps}, nil
}

// measureStreamedPushWithFloor is S1, and on S3 its floor (S1b, S1c)
// measured after it on the same store.
func measureStreamedPushWithFloor(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	vals, err := measureStreamedPush(ctx, h, s, c)
	if err != nil || s.stor.shaped == nil {
		return vals, err
	}
	v := h.big.variant(4)
	mbps, finish, err := rawStreamedPush(ctx, s.stor, v)
	if err != nil {
		return nil, err
	}
	one, err := rawCopyObject(ctx, s.stor.shaped, floorStreamUploadKey, floorStreamBlobKey+"-one", v.size())
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h.log, "bench:     %s's store, straight: %.1f MB/s, complete + copy %.2f s (one CopyObject instead: %.2f s)\n", s.name, mbps, finish, one)
	return append(vals, mbps, finish), nil
}

// streamedPushRows are S1's rows: on S3 with its floor.
func (h *harness) streamedPushRows() []row {
	rows := []row{{"S1", fmt.Sprintf("push one %s blob in one streamed PATCH + PUT", sizeText(h.sz.big)), "MB/s", throughput, 4}}
	if h.backend != "s3" {
		return rows
	}
	return append(rows,
		row{"S1b", fmt.Sprintf("the same straight to the store through the same link: one multipart upload in %s parts, %d in flight, then complete + copy to the blob key in %s parts sent together",
			sizeText(floorPartSize), floorWriteConcurrency, sizeText(floorCopyPart)), "MB/s", info, 0},
		row{"S1c", "S1b's complete + copy alone", "s", info, 0})
}
