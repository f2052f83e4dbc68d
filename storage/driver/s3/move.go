package s3

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-registry/berth/storage/driver"
)

// maxDeleteBatch is the most keys one DeleteObjects call takes.
const maxDeleteBatch = 1000

// Move implements driver.Driver: a server-side copy, then delete the source.
// Objects above multipartcopythresholdsize are copied in parallel parts,
// which is both faster and the only way past CopyObject's 5 GiB limit.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	head, err := d.headObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: aws.String(d.key(src))})
	if err != nil {
		return mapErr("move", src, err)
	}
	size := aws.ToInt64(head.ContentLength)
	if size <= d.cfg.copyThreshold {
		err = d.copyObject(ctx, src, dst)
	} else {
		err = d.copyMultipart(ctx, src, dst, size)
	}
	if err != nil {
		return mapErr("move", src, err)
	}
	_, err = d.deleteObject(ctx, &s3.DeleteObjectInput{Bucket: d.bucket, Key: aws.String(d.key(src))})
	return mapErr("move", src, err)
}

// copySource names the object at key as CopyObject and UploadPartCopy
// take it: bucket/key.
func (d *Driver) copySource(key string) *string {
	return aws.String(d.cfg.Bucket + "/" + key)
}

func (d *Driver) copyObject(ctx context.Context, src, dst string) error {
	return d.copyKey(ctx, d.key(src), dst)
}

// copyKey copies the object at key srcKey, which may be no driver path's
// (a state object), to dst, as an object Berth wrote there itself.
func (d *Driver) copyKey(ctx context.Context, srcKey, dst string) error {
	sse, kms := d.sse()
	_, err := d.copyObjectIn(ctx, &s3.CopyObjectInput{
		Bucket: d.bucket, Key: aws.String(d.key(dst)), CopySource: d.copySource(srcKey),
		ContentType:          aws.String("application/octet-stream"),
		MetadataDirective:    types.MetadataDirectiveReplace,
		ServerSideEncryption: sse, SSEKMSKeyId: kms,
		StorageClass: d.cfg.storageClass, ACL: d.cfg.acl,
	})
	return err
}

func (d *Driver) copyMultipart(ctx context.Context, src, dst string, size int64) error {
	id, err := d.createUpload(ctx, d.key(dst))
	if err != nil {
		return err
	}
	chunk := d.cfg.copyChunkSize
	n := int((size + chunk - 1) / chunk)
	parts := make([]types.CompletedPart, n)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, d.cfg.copyParallel)
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			first := int64(i) * chunk
			last := min(first+chunk, size) - 1
			out, err := d.c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
				Bucket: d.bucket, Key: aws.String(d.key(dst)), UploadId: aws.String(id),
				PartNumber: aws.Int32(int32(i + 1)), CopySource: d.copySource(d.key(src)),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
			})
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
				return
			}
			parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr == nil {
		firstErr = d.completeUpload(ctx, d.key(dst), id, parts)
	}
	if firstErr != nil {
		d.abortUpload(context.WithoutCancel(ctx), d.key(dst), id)
	}
	return firstErr
}

// Delete implements driver.Driver: the file at path, or everything below
// the directory path, in batches of DeleteObjects as the listing pages in.
//
// The directory is listed first and the path's own key joins its first
// batch unasked (deleting a key that does not exist succeeds): deleting a
// directory, as an upload session's or a repository's, costs no HEAD.
// Only when nothing is below path is the key asked for, to tell a file
// from nothing at all.
func (d *Driver) Delete(ctx context.Context, path string) error {
	var self []types.ObjectIdentifier
	if path != "/" {
		self = []types.ObjectIdentifier{{Key: aws.String(d.key(path))}}
	}
	listed, err := d.deletePrefix(ctx, d.dirPrefix(path), self, false)
	if err != nil {
		return mapErr("delete", path, err)
	}
	if listed == 0 {
		if path == "/" {
			return pathErr("delete", path, driver.ErrNotFound)
		}
		if _, err := d.headObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: self[0].Key}); err != nil {
			return mapErr("delete", path, err)
		}
		if _, err := d.deleteObject(ctx, &s3.DeleteObjectInput{Bucket: d.bucket, Key: self[0].Key}); err != nil {
			return mapErr("delete", path, err)
		}
	}
	// Unfinished writes below a deleted directory go with it. Their state
	// objects are small and few; a failure here leaves only garbage that
	// the upload purger finds. A file's own unfinished write is deleted
	// unlisted; a directory (objects were listed below it) is no file's
	// path, so nothing is sent when nothing is below it: an upload session
	// committed a moment ago, its state object already gone, costs one
	// listing here and no delete.
	if path != "/" {
		_, _ = d.deletePrefix(ctx, d.stateKey(path)+"/", []types.ObjectIdentifier{{Key: aws.String(d.stateKey(path))}}, listed == 0)
	}
	return nil
}

// deletePrefix deletes every object below prefix and returns how many it
// listed there. The keys given are deleted with the first batch, and when
// the listing is empty only if always is set.
func (d *Driver) deletePrefix(ctx context.Context, prefix string, extra []types.ObjectIdentifier, always bool) (int, error) {
	listed := 0
	keys := slices.Clone(extra)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		out, err := d.deleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: d.bucket, Delete: &types.Delete{Objects: keys, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete %s: %s: %s (%d keys failed)", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message), len(out.Errors))
		}
		keys = keys[:0]
		return nil
	}
	err := d.listPages(ctx, &s3.ListObjectsV2Input{Bucket: d.bucket, Prefix: aws.String(prefix)}, func(page *s3.ListObjectsV2Output) error {
		for _, o := range page.Contents {
			keys = append(keys, types.ObjectIdentifier{Key: o.Key})
			listed++
			if len(keys) == maxDeleteBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return listed, err
	}
	if listed == 0 && !always {
		return 0, nil
	}
	return listed, flush()
}
