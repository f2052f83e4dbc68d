package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/inflight"
)

// The state object of an unfinished write holds the bytes written after
// the last full part (S3 refuses non-final parts under 5 MiB, and cannot
// read back a part of an unfinished upload), and in its metadata:
const (
	metaUpload  = "berth-upload"  // the multipart upload id, "" before the first part
	metaOffset  = "berth-offset"  // bytes in the upload's parts, where the tail starts
	metaStarted = "berth-started" // when the write began, RFC 3339
	// Set by CloseShared, which also sends the tail as the upload's last,
	// short part: its number and ETag, so that the next writer knows the
	// part for the tail it holds and sends it again with the bytes after.
	metaTailPart = "berth-tailpart"
	metaTailETag = "berth-tailetag"
)

var errClosed = errors.New("writer already closed, committed or cancelled")

// writer streams into a multipart upload on the file's key. The upload is
// created with the first full part, so a file smaller than chunksize costs
// one PUT at Commit. Full parts are sent in the background, up to
// writeconcurrency at a time (see parts.go): memory is that many chunksize
// buffers, fewer when the driver's writememory is spent.
type writer struct {
	d       *Driver
	path    string
	key     string
	started time.Time

	upload    string // multipart upload id, "" until the first part
	parts     []types.CompletedPart
	partBytes int64 // bytes in parts, those in flight included
	buf       *[]byte
	tail      int64       // bytes that were in buf when it was released
	state     bool        // a state object may exist at stateKey
	short     *types.Part // a last part under S3's minimum, after parts
	done      bool
	// reopenable is set by a Close that succeeded, until Reopen.
	reopenable bool
	// known is set when this writer, or the one it was reopened from,
	// started the write (NewWriter): then state says all there is at
	// stateKey, and a state object never written needs no delete.
	known bool
	// kept is the tail Close stored, kept for Reopen (kept.go).
	kept *keptTail
	// stored is how many bytes at the start of buf the state object
	// holds as they are, with no part before them: set by Reopen, for
	// CommitTo to copy them there rather than send them again.
	stored int
	// planned parts of planSize bytes come before parts go back to
	// chunksize (Expect, plan.go).
	planned  int
	planSize int64
	err      error // a failed part upload poisons the writer

	// flight holds the parts in flight; a part records itself in parts
	// once it landed.
	flight *inflight.Queue[types.CompletedPart]
	// ctx is Writer's, for Write, Close and the parts, which take none:
	// the caller keeps it alive for the writer's life and cancels it to
	// stop a call that hangs (the wrapper Open returns does both); stop
	// ends the parts on Cancel.
	ctx  context.Context
	stop context.CancelFunc
}

// Writer implements driver.Driver.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	w := &writer{d: d, path: path, key: d.key(path), started: time.Now().UTC()}
	w.flight = inflight.New(d.bufs, d.memory, d.cfg.writeConcurrency, w.landed)
	// Parts outlive the call that sends them (Write has no context): they
	// stop on Cancel, or when ctx ends (the driver wrapper keeps ctx for
	// the writer's life and cancels it at a deadline).
	w.ctx, w.stop = context.WithCancel(ctx)
	var err error
	if append {
		err = w.resume(ctx)
	} else {
		err = w.discard(ctx)
	}
	if err != nil {
		w.stop()
		w.flight.Release()
		return nil, err
	}
	if w.buf == nil {
		w.buf = d.getBuf()
	}
	return w, nil
}

// NewWriter implements driver.FreshWriter: a write at a path where no
// write was ever started needs no search for an unfinished one (a listing
// of the key's multipart uploads and a delete of its state object).
func (d *Driver) NewWriter(ctx context.Context, path string) (driver.FileWriter, error) {
	w := &writer{d: d, path: path, key: d.key(path), started: time.Now().UTC(), known: true}
	w.flight = inflight.New(d.bufs, d.memory, d.cfg.writeConcurrency, w.landed)
	w.ctx, w.stop = context.WithCancel(ctx)
	w.buf = d.getBuf()
	return w, nil
}

func (d *Driver) getBuf() *[]byte {
	b := d.bufs.Get()
	return &b
}

// release gives back every buffer; parts must have finished (settle).
func (w *writer) release() {
	if w.buf != nil {
		// Size must keep counting them after Close: callers report it.
		w.tail = int64(len(*w.buf))
		w.d.bufs.Put(*w.buf)
		w.buf = nil
	}
	w.flight.Release()
	w.stop()
}

// uploads returns the unfinished multipart uploads on exactly this key,
// oldest first. (MinIO lists uploads only for an exact object name, and
// AWS lists by prefix: asking for the key itself works on both.)
func (w *writer) uploads(ctx context.Context) ([]types.MultipartUpload, error) {
	var ups []types.MultipartUpload
	pages := s3.NewListMultipartUploadsPaginator(w.d.c, &s3.ListMultipartUploadsInput{
		Bucket: w.d.bucket, Prefix: aws.String(w.key),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) == w.key {
				ups = append(ups, u)
			}
		}
	}
	slices.SortFunc(ups, func(a, b types.MultipartUpload) int { return aws.ToTime(a.Initiated).Compare(aws.ToTime(b.Initiated)) })
	return ups, nil
}

// discard aborts every unfinished write at the path.
func (w *writer) discard(ctx context.Context) error {
	ups, err := w.uploads(ctx)
	if err != nil {
		return mapErr("writer", w.path, err)
	}
	for _, u := range ups {
		if err := w.d.abortUpload(ctx, w.key, aws.ToString(u.UploadId)); err != nil && !isNotFound(err) {
			return mapErr("writer", w.path, err)
		}
	}
	_, err = w.d.deleteObject(ctx, &s3.DeleteObjectInput{Bucket: w.d.bucket, Key: aws.String(w.d.stateKey(w.path))})
	return mapErr("writer", w.path, err)
}

// resume picks up the newest multipart upload on the key and the state
// object's tail, if that tail follows the upload's parts exactly. A tail
// left behind by an earlier round (its bytes since uploaded as a part) is
// ignored, so bytes are never counted twice.
func (w *writer) resume(ctx context.Context) error {
	ups, err := w.uploads(ctx)
	if err != nil {
		return mapErr("writer", w.path, err)
	}
	if len(ups) > 0 {
		u := ups[len(ups)-1]
		w.upload = aws.ToString(u.UploadId)
		w.started = aws.ToTime(u.Initiated).UTC()
		if err := w.listParts(ctx); err != nil {
			return mapErr("writer", w.path, err)
		}
	}
	return w.readState(ctx)
}

// readState reads the state object's tail into the buffer when it follows
// the parts exactly (see resume).
func (w *writer) readState(ctx context.Context) error {
	st, err := w.d.getObject(ctx, &s3.GetObjectInput{Bucket: w.d.bucket, Key: aws.String(w.d.stateKey(w.path))})
	if err == nil {
		defer st.Body.Close()
		w.state = true
	}
	if w.short != nil && (isNotFound(err) || err == nil && !w.ownTail(st)) {
		return w.completeForeign(ctx)
	}
	switch {
	case err == nil:
		off, _ := strconv.ParseInt(st.Metadata[metaOffset], 10, 64)
		if st.Metadata[metaUpload] != w.upload || off != w.partBytes {
			break
		}
		if t, err := time.Parse(time.RFC3339Nano, st.Metadata[metaStarted]); err == nil {
			w.started = t
		}
		if n := aws.ToInt64(st.ContentLength); n > w.d.cfg.chunkSize {
			// Written by a driver configured with a larger chunksize: this
			// writer's first part is that large.
			b := make([]byte, 0, n)
			w.buf = &b
		} else {
			w.buf = w.d.getBuf()
		}
		tail := *w.buf
		n, err := io.ReadFull(st.Body, tail[:cap(tail)])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			w.release()
			return mapErr("writer", w.path, err)
		}
		*w.buf = tail[:n]
		return nil
	case !isNotFound(err):
		return mapErr("writer", w.path, err)
	}
	if w.upload == "" {
		return pathErr("writer", w.path, driver.ErrNotFound)
	}
	return nil
}

func (w *writer) listParts(ctx context.Context) error {
	pages := s3.NewListPartsPaginator(w.d.c, &s3.ListPartsInput{
		Bucket: w.d.bucket, Key: aws.String(w.key), UploadId: aws.String(w.upload),
	})
	var all []types.Part
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		all = append(all, page.Parts...)
	}
	slices.SortFunc(all, func(a, b types.Part) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	// The write goes on after the parts 1..k that all landed. A writer
	// that died with several parts in flight may have left later parts
	// past a gap: their bytes follow bytes that were lost, so they are
	// left out, overwritten by the parts of the same numbers or dropped
	// when the upload completes without them.
	for i, p := range all {
		if aws.ToInt32(p.PartNumber) != int32(i+1) {
			break
		}
		if aws.ToInt64(p.Size) < minChunkSize {
			if i == len(all)-1 {
				// The tail CloseShared sent, or the last part of a
				// write CNCF Distribution's driver closed: resume
				// decides which.
				w.short = &all[i]
				break
			}
			// S3 would refuse to complete it with more parts after.
			return fmt.Errorf("%w: multipart upload %s has a short part %d", driver.ErrNotFound, w.upload, aws.ToInt32(p.PartNumber))
		}
		w.parts = append(w.parts, types.CompletedPart{ETag: p.ETag, PartNumber: p.PartNumber})
		w.partBytes += aws.ToInt64(p.Size)
	}
	return nil
}

// ownTail tells whether the short last part is the tail the state object
// st holds, sent by CloseShared: the tail is resumed from st, and the part
// is sent again, with what follows, under its number.
func (w *writer) ownTail(st *s3.GetObjectOutput) bool {
	off, _ := strconv.ParseInt(st.Metadata[metaOffset], 10, 64)
	return st.Metadata[metaUpload] == w.upload && off == w.partBytes &&
		st.Metadata[metaTailPart] == strconv.Itoa(int(aws.ToInt32(w.short.PartNumber))) &&
		st.Metadata[metaTailETag] == strings.Trim(aws.ToString(w.short.ETag), `"`) &&
		aws.ToInt64(st.ContentLength) == aws.ToInt64(w.short.Size)
}

// completeForeign completes a multipart upload that ends in a short part
// this driver did not send (CNCF Distribution's driver closes a write
// that way, during a migration): S3 cannot read back or append to a part,
// so the write is completed at its path with every byte in order, and the
// caller finds it there as a committed file (ErrNotFound: no unfinished
// write), which it copies into a new write.
func (w *writer) completeForeign(ctx context.Context) error {
	parts := append(w.parts, types.CompletedPart{ETag: w.short.ETag, PartNumber: w.short.PartNumber})
	if err := w.d.completeUpload(ctx, w.key, w.upload, parts); err != nil {
		return mapErr("writer", w.path, err)
	}
	return pathErr("writer", w.path, driver.ErrNotFound)
}

func (w *writer) Size() int64 {
	if w.buf == nil {
		return w.partBytes + w.tail
	}
	return w.partBytes + int64(len(*w.buf))
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, pathErr("write", w.path, errClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(p) > 0 {
		w.flight.Writing()
	}
	n := 0
	for len(p) > 0 {
		buf := *w.buf
		end := w.partEnd()
		c := copy(buf[len(buf):end], p)
		*w.buf = buf[:len(buf)+c]
		n += c
		p = p[c:]
		if len(*w.buf) == end {
			if err := w.sendPart(); err != nil {
				w.err = pathErr("write", w.path, err)
				return n, w.err
			}
		}
	}
	return n, nil
}

// Close persists the tail in the state object so that a writer in any
// process can resume. After Commit or Cancel it does nothing.
func (w *writer) Close() error { return w.close(false) }

// CloseShared implements driver.SharedCloser: Close, and the write left as
// CNCF Distribution's driver continues it, every byte in the parts of the
// one multipart upload on the key: the tail is also sent as a last, short
// part (Distribution completes and restarts the upload before it appends
// after one), and a write that never filled a part gets an upload. It
// costs one or two requests more than Close.
func (w *writer) CloseShared() error { return w.close(true) }

func (w *writer) close(shared bool) error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.release()
	if int64(len(*w.buf)) >= minChunkSize {
		// A tail S3 takes as a part is sent as one, rather than stored
		// aside and read back by the next writer to be sent then: a
		// client pushing in chunks a little over chunksize (16 MiB over
		// 10) would otherwise move most of each chunk three times.
		if err := w.sendPart(); err != nil && w.err == nil {
			w.err = pathErr("close", w.path, err)
		}
	}
	if err := w.settle(); err != nil {
		return err
	}
	if len(*w.buf) == 0 && w.upload != "" && w.state {
		// Every byte is in the upload's parts, and the state object there
		// already is behind them (this writer sent a part since it was
		// written) or says so (its tail was empty): the next writer
		// ignores a tail whose offset is not where the parts end
		// (resume). A chunked push whose chunks end on part boundaries
		// saves a round trip per chunk. The object stays, so that
		// Unfinished finds the write on servers that list uploads only
		// by exact key.
		w.reopenable = true
		return nil
	}
	tail := *w.buf
	meta := map[string]string{
		metaUpload:  w.upload,
		metaOffset:  strconv.FormatInt(w.partBytes, 10),
		metaStarted: w.started.Format(time.RFC3339Nano),
	}
	if shared {
		if err := w.shareTail(meta); err != nil {
			return mapErr("close", w.path, err)
		}
	}
	// Set before the request, which may store the object even when it
	// fails: Cancel must then delete it.
	w.state = true
	_, err := w.d.putObject(w.ctx, &s3.PutObjectInput{
		Bucket: w.d.bucket, Key: aws.String(w.d.stateKey(w.path)),
		Body: bytes.NewReader(tail), ContentLength: aws.Int64(int64(len(tail))),
		Metadata:             meta,
		ServerSideEncryption: w.encryption(),
		SSEKMSKeyId:          w.kmsKey(),
	})
	if err != nil {
		return mapErr("close", w.path, err)
	}
	w.reopenable = true
	w.keepTail()
	return nil
}

// Reopen implements driver.Reopener: the write goes on after the upload
// and parts this writer knew at Close, without listing them again, and a
// tail it left in the state object is read back (one request instead of
// three). The state object must still say that the tail follows those
// parts; if it does not, the write resumes as Writer resumes it.
func (w *writer) Reopen(ctx context.Context) (driver.FileWriter, error) {
	if !w.reopenable {
		return nil, pathErr("writer", w.path, driver.ErrUnsupported)
	}
	w.reopenable = false
	nw := &writer{
		d: w.d, path: w.path, key: w.key, started: w.started,
		upload: w.upload, parts: slices.Clone(w.parts), partBytes: w.partBytes, state: w.state, known: w.known,
	}
	nw.flight = inflight.New(w.d.bufs, w.d.memory, w.d.cfg.writeConcurrency, nw.landed)
	nw.ctx, nw.stop = context.WithCancel(ctx)
	if w.tail > 0 {
		kept := w.kept.take()
		if int64(len(kept)) == w.tail {
			// The caller vouches that nothing wrote since Close: the
			// state object holds this tail, after these parts. The
			// write goes on in the buffer that holds it (kept.go).
			nw.buf = &kept
			nw.noteStored()
			return nw, nil
		}
		if kept != nil {
			w.d.bufs.Put(kept)
		}
		if err := nw.readState(ctx); err != nil {
			nw.stop()
			nw.flight.Release()
			return nil, err
		}
		if nw.buf == nil || int64(len(*nw.buf)) != w.tail {
			nw.release()
			return w.d.Writer(ctx, w.path, true)
		}
		nw.noteStored()
		return nw, nil
	}
	nw.buf = w.d.getBuf()
	return nw, nil
}

// noteStored records, for a writer Reopen just filled from its tail, that
// the state object holds the buffer as it is when no part comes before it.
func (w *writer) noteStored() {
	if w.upload == "" && w.state {
		w.stored = len(*w.buf)
	}
}

// shareTail sends the tail as the next part, not counted in partBytes (the
// state object holds it too), and records it in meta. Before the state
// object: a crash between the two leaves a part the state does not name,
// which the next writer completes with the rest (completeForeign).
func (w *writer) shareTail(meta map[string]string) error {
	if w.upload == "" {
		id, err := w.d.createUpload(w.ctx, w.key)
		if err != nil {
			return err
		}
		w.upload = id
		meta[metaUpload] = id
	}
	if len(*w.buf) == 0 {
		return nil
	}
	num := int32(len(w.parts) + 1)
	p, err := w.d.uploadPart(w.ctx, w.key, w.upload, num, *w.buf)
	if err != nil {
		return err
	}
	meta[metaTailPart] = strconv.Itoa(int(num))
	meta[metaTailETag] = strings.Trim(aws.ToString(p.ETag), `"`)
	return nil
}

func (w *writer) encryption() types.ServerSideEncryption { s, _ := w.d.sse(); return s }
func (w *writer) kmsKey() *string                        { _, k := w.d.sse(); return k }

// Commit publishes the file: one PUT when it never filled a part, else the
// tail as the final part (which may be short) and CompleteMultipartUpload.
func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return pathErr("commit", w.path, errClosed)
	}
	if w.err != nil {
		return w.err
	}
	w.done = true
	defer w.release()
	if err := w.settle(); err != nil {
		return err
	}
	if w.upload != "" && len(w.parts) == 0 && len(*w.buf) == 0 {
		// An upload created by a writer that died before its first part:
		// S3 cannot complete it without parts, so write the empty file.
		if err := w.d.abortUpload(ctx, w.key, w.upload); err != nil && !isNotFound(err) {
			return mapErr("commit", w.path, err)
		}
		w.upload = ""
	}
	if w.upload == "" {
		in := &s3.PutObjectInput{
			Bucket: w.d.bucket, Key: aws.String(w.key),
			Body: bytes.NewReader(*w.buf), ContentLength: aws.Int64(int64(len(*w.buf))),
			ContentType: aws.String("application/octet-stream"),
		}
		w.d.putOptions(in)
		if _, err := w.d.putObject(ctx, in); err != nil {
			return mapErr("commit", w.path, err)
		}
	} else {
		if len(*w.buf) > 0 {
			if err := w.lastPart(ctx); err != nil {
				return mapErr("commit", w.path, err)
			}
		}
		slices.SortFunc(w.parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
		if err := w.d.completeUpload(ctx, w.key, w.upload, w.parts); err != nil {
			return mapErr("commit", w.path, err)
		}
	}
	return w.dropState(ctx)
}

// Cancel aborts the multipart upload and removes the state object.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return pathErr("cancel", w.path, errClosed)
	}
	w.done = true
	defer w.release()
	// Parts in flight are let end (each has its deadline) before the
	// abort, not cancelled: a part request cancelled after its body went
	// out may still be stored by the service after the abort, which S3
	// documents for parts in progress (the Azure and GCS writers saw the
	// same on their emulators).
	_ = w.settle()
	w.stop()
	if w.upload != "" {
		if err := w.d.abortUpload(ctx, w.key, w.upload); err != nil && !isNotFound(err) {
			return mapErr("cancel", w.path, err)
		}
	}
	// A write started by a Close-d writer of this process or another may
	// have left a state object even when this one never saw it; one this
	// writer's line started and never closed has none.
	if w.known && !w.state {
		return nil
	}
	_, err := w.d.deleteObject(ctx, &s3.DeleteObjectInput{Bucket: w.d.bucket, Key: aws.String(w.d.stateKey(w.path))})
	return mapErr("cancel", w.path, err)
}

func (w *writer) dropState(ctx context.Context) error {
	if !w.state {
		return nil
	}
	_, err := w.d.deleteObject(ctx, &s3.DeleteObjectInput{Bucket: w.d.bucket, Key: aws.String(w.d.stateKey(w.path))})
	return mapErr("commit", w.path, err)
}

func (d *Driver) createUpload(ctx context.Context, key string) (string, error) {
	sse, kms := d.sse()
	out, err := d.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: d.bucket, Key: aws.String(key),
		ContentType:          aws.String("application/octet-stream"),
		ServerSideEncryption: sse, SSEKMSKeyId: kms,
		StorageClass: d.cfg.storageClass, ACL: d.cfg.acl,
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

func (d *Driver) completeUpload(ctx context.Context, key, id string, parts []types.CompletedPart) error {
	_, err := d.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: d.bucket, Key: aws.String(key), UploadId: aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return err
}

func (d *Driver) abortUpload(ctx context.Context, key, id string) error {
	_, err := d.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: d.bucket, Key: aws.String(key), UploadId: aws.String(id),
	})
	return err
}

// Unfinished implements driver.UploadLister: the writes below dir that were
// closed without Commit (their state objects), and the multipart uploads
// the server lists below dir (AWS does; MinIO lists only exact keys).
func (d *Driver) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	found := map[string]time.Time{}
	note := func(path string, t time.Time) {
		if old, ok := found[path]; !ok || t.Before(old) {
			found[path] = t
		}
	}
	statePrefix := d.cfg.root + stateDir
	prefix := statePrefix + strings.TrimPrefix(d.dirPrefix(dir), d.cfg.root)
	err := d.listPages(ctx, &s3.ListObjectsV2Input{Bucket: d.bucket, Prefix: aws.String(prefix)}, func(page *s3.ListObjectsV2Output) error {
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			started := aws.ToTime(o.LastModified)
			head, err := d.headObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: o.Key})
			if err != nil {
				if isNotFound(err) {
					continue // committed or cancelled meanwhile
				}
				return err
			}
			if t, err := time.Parse(time.RFC3339Nano, head.Metadata[metaStarted]); err == nil {
				started = t
			}
			note("/"+strings.TrimPrefix(key, statePrefix), started)
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("unfinished", dir, err)
	}
	ups := s3.NewListMultipartUploadsPaginator(d.c, &s3.ListMultipartUploadsInput{
		Bucket: d.bucket, Prefix: aws.String(d.dirPrefix(dir)),
	})
	for ups.HasMorePages() {
		page, err := ups.NextPage(ctx)
		if err != nil {
			return nil, mapErr("unfinished", dir, err)
		}
		for _, u := range page.Uploads {
			note(d.path(aws.ToString(u.Key)), aws.ToTime(u.Initiated))
		}
	}
	return found, nil
}
