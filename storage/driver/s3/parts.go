package s3

import (
	"bytes"
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Full parts are uploaded in the background while the writer fills the
// next buffer, up to writeconcurrency at a time and within the driver's
// writememory (see package inflight). Part numbers are fixed when a part
// is sent, so the object's bytes are in write order however the uploads
// finish.

// sendPart hands the full buffer to a background upload as the next part
// and gives the writer an empty buffer to fill.
func (w *writer) sendPart() error {
	if err := w.flight.Reap(); err != nil {
		return err
	}
	if w.upload == "" {
		id, err := w.d.createUpload(w.ctx, w.key)
		if err != nil {
			return err
		}
		w.upload = id
	}
	num := int32(len(w.parts) + w.flight.Len() + 1)
	upload := w.upload
	if w.planned > 0 {
		w.planned--
	}
	w.partBytes += int64(len(*w.buf))
	next, err := w.flight.Send(*w.buf, func(b []byte) (types.CompletedPart, error) {
		return w.d.uploadPart(w.ctx, w.key, upload, num, b)
	})
	w.buf = &next
	return err
}

// landed records a part that landed, in the order parts were sent.
func (w *writer) landed(p types.CompletedPart) { w.parts = append(w.parts, p) }

// settle waits for every part in flight. A failed part poisons the
// writer: its bytes are not in the upload, so neither Close nor Commit may
// claim them.
func (w *writer) settle() error {
	if err := w.flight.Settle(); err != nil && w.err == nil {
		w.err = pathErr("write", w.path, err)
	}
	return w.err
}

// uploadPart sends buf as part num.
func (d *Driver) uploadPart(ctx context.Context, key, upload string, num int32, buf []byte) (types.CompletedPart, error) {
	out, err := d.c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: d.bucket, Key: aws.String(key), UploadId: aws.String(upload),
		PartNumber: aws.Int32(num), Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf))),
	})
	if err != nil {
		return types.CompletedPart{}, err
	}
	return types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}, nil
}

// lastPart uploads the buffer, the file's tail, as the final part (which
// may be short) and waits for it.
func (w *writer) lastPart(ctx context.Context) error {
	p, err := w.d.uploadPart(ctx, w.key, w.upload, int32(len(w.parts)+1), *w.buf)
	if err != nil {
		return err
	}
	w.parts = append(w.parts, p)
	w.partBytes += int64(len(*w.buf))
	*w.buf = (*w.buf)[:0]
	return nil
}
