package s3

import (
	"bytes"
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// One TCP stream to an object store carries tens of MB/s; a writer that
// waits for each part before filling the next one is held to that. So a
// full part is uploaded in the background while the writer fills the next
// buffer, up to writeconcurrency parts at a time. Part numbers are fixed
// when a part is sent, so the object's bytes are in write order however the
// uploads finish. Memory: every writer has one buffer; more, up to
// writeconcurrency, only while the driver's writememory allows, so many
// concurrent writers fall back to one part at a time rather than grow.

// part is one part upload in flight.
type part struct {
	num  int32
	buf  []byte
	done chan struct{} // closed when the upload returned
	etag *string
	err  error
}

// sendPart hands the full buffer to a background upload as the next part
// and gives the writer an empty buffer to fill.
func (w *writer) sendPart() error {
	if err := w.reap(); err != nil {
		return err
	}
	if w.upload == "" {
		id, err := w.d.createUpload(w.ctx, w.key)
		if err != nil {
			return err
		}
		w.upload = id
	}
	p := &part{num: int32(len(w.parts) + len(w.flight) + 1), buf: *w.buf, done: make(chan struct{})}
	w.partBytes += int64(len(p.buf))
	w.flight = append(w.flight, p)
	w.buf = nil
	go w.d.uploadPart(w.ctx, w.key, w.upload, p)
	next, err := w.nextBuf()
	w.buf = &next
	return err
}

// nextBuf returns an empty buffer: a spare one, a new one while fewer than
// writeconcurrency are held and writememory allows it, or else the oldest
// part's once it landed.
func (w *writer) nextBuf() ([]byte, error) {
	if n := len(w.spare); n > 0 {
		b := w.spare[n-1]
		w.spare = w.spare[:n-1]
		return b[:0], nil
	}
	held := 1 + w.extra // the first buffer is in flight now
	if held < w.d.cfg.writeConcurrency && w.d.memory.TryAcquire(1) {
		w.extra++
		return w.d.bufs.Get(), nil
	}
	err := w.collect()
	n := len(w.spare)
	b := w.spare[n-1]
	w.spare = w.spare[:n-1]
	return b[:0], err
}

// collect waits for the oldest part in flight, records it and keeps its
// buffer as a spare.
func (w *writer) collect() error {
	p := w.flight[0]
	<-p.done
	w.flight = w.flight[1:]
	w.spare = append(w.spare, p.buf[:0])
	if p.err != nil {
		return p.err
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: p.etag, PartNumber: aws.Int32(p.num)})
	return nil
}

// reap records the oldest parts that already landed, without waiting, and
// returns the first failure among them.
func (w *writer) reap() error {
	for len(w.flight) > 0 {
		select {
		case <-w.flight[0].done:
			if err := w.collect(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// settle waits for every part in flight. A failed part poisons the
// writer: its bytes are not in the upload, so neither Close nor Commit may
// claim them.
func (w *writer) settle() error {
	for len(w.flight) > 0 {
		if err := w.collect(); err != nil && w.err == nil {
			w.err = pathErr("write", w.path, err)
		}
	}
	return w.err
}

// uploadPart sends p and closes p.done.
func (d *Driver) uploadPart(ctx context.Context, key, upload string, p *part) {
	defer close(p.done)
	out, err := d.c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: d.bucket, Key: aws.String(key), UploadId: aws.String(upload),
		PartNumber: aws.Int32(p.num), Body: bytes.NewReader(p.buf), ContentLength: aws.Int64(int64(len(p.buf))),
	})
	if err != nil {
		p.err = err
		return
	}
	p.etag = out.ETag
}

// lastPart uploads the buffer, the file's tail, as the final part (which
// may be short) and waits for it.
func (w *writer) lastPart(ctx context.Context) error {
	p := &part{num: int32(len(w.parts) + 1), buf: *w.buf, done: make(chan struct{})}
	w.d.uploadPart(ctx, w.key, w.upload, p)
	if p.err != nil {
		return p.err
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: p.etag, PartNumber: aws.Int32(p.num)})
	w.partBytes += int64(len(p.buf))
	*w.buf = (*w.buf)[:0]
	return nil
}
