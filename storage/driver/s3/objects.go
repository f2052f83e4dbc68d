package s3

import (
	"bytes"
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// headObject, getObject, putObject and deleteObject are the SDK's calls of
// the same names, sent lean (see lean.go) when the driver has a lean path
// and the input asks only for what it sends. Their inputs are always on
// the driver's bucket.

func (d *Driver) headObject(ctx context.Context, in *s3.HeadObjectInput) (*s3.HeadObjectOutput, error) {
	if d.lean == nil || !d.lean.keyIn.only(in) {
		return d.c.HeadObject(ctx, in)
	}
	resp, err := d.lean.call(ctx, http.MethodHead, aws.ToString(in.Key), nil, nil)
	if err != nil {
		return nil, opErr("HeadObject", err)
	}
	_ = resp.Body.Close()
	out := &s3.HeadObjectOutput{}
	out.ContentLength, out.LastModified, out.ETag, out.Metadata = objectHeaders(resp.Header)
	return out, nil
}

func (d *Driver) getObject(ctx context.Context, in *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
	if d.lean == nil || !d.lean.getIn.only(in) {
		return d.c.GetObject(ctx, in)
	}
	h := http.Header{}
	if in.Range != nil {
		h.Set("Range", *in.Range)
	}
	if in.IfMatch != nil {
		h.Set("If-Match", *in.IfMatch)
	}
	resp, err := d.lean.call(ctx, http.MethodGet, aws.ToString(in.Key), h, nil)
	if err != nil {
		return nil, opErr("GetObject", err)
	}
	out := &s3.GetObjectOutput{Body: resp.Body}
	out.ContentLength, out.LastModified, out.ETag, out.Metadata = objectHeaders(resp.Header)
	if v := resp.Header.Get("Content-Range"); v != "" {
		out.ContentRange = &v
	}
	return out, nil
}

func (d *Driver) putObject(ctx context.Context, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
	body, ok := in.Body.(*bytes.Reader)
	if d.lean == nil || !ok || body.Len() != int(body.Size()) ||
		!d.lean.putIn.only(in) {
		return d.c.PutObject(ctx, in)
	}
	h := http.Header{}
	setHeader(h, "If-None-Match", aws.ToString(in.IfNoneMatch))
	storedAs(h, in.ContentType, in.ServerSideEncryption, in.SSEKMSKeyId, in.StorageClass, in.ACL)
	for k, v := range in.Metadata {
		h.Set("X-Amz-Meta-"+k, v)
	}
	resp, err := d.lean.call(ctx, http.MethodPut, aws.ToString(in.Key), h, body)
	if err != nil {
		return nil, opErr("PutObject", err)
	}
	_ = resp.Body.Close()
	out := &s3.PutObjectOutput{}
	if v := resp.Header.Get("ETag"); v != "" {
		out.ETag = &v
	}
	return out, nil
}

func (d *Driver) deleteObject(ctx context.Context, in *s3.DeleteObjectInput) (*s3.DeleteObjectOutput, error) {
	if d.lean == nil || !d.lean.keyIn.only(in) {
		return d.c.DeleteObject(ctx, in)
	}
	resp, err := d.lean.call(ctx, http.MethodDelete, aws.ToString(in.Key), nil, nil)
	if err != nil {
		return nil, opErr("DeleteObject", err)
	}
	_ = resp.Body.Close()
	return &s3.DeleteObjectOutput{}, nil
}

// copyObjectIn is the SDK's CopyObject, sent lean: every layer docker
// pushes is committed by a copy of its state object (writer.CommitTo).
func (d *Driver) copyObjectIn(ctx context.Context, in *s3.CopyObjectInput) (*s3.CopyObjectOutput, error) {
	if d.lean == nil || !d.lean.copyIn.only(in) {
		return d.c.CopyObject(ctx, in)
	}
	h := http.Header{}
	setHeader(h, "X-Amz-Copy-Source", aws.ToString(in.CopySource))
	setHeader(h, "X-Amz-Metadata-Directive", string(in.MetadataDirective))
	storedAs(h, in.ContentType, in.ServerSideEncryption, in.SSEKMSKeyId, in.StorageClass, in.ACL)
	// The SDK's x-id goes too: S3 ignores it, and a log of requests
	// tells a copy from a PUT by it.
	resp, err := d.lean.callQuery(ctx, http.MethodPut, aws.ToString(in.Key), "x-id=CopyObject", h, nil)
	if err != nil {
		return nil, opErr("CopyObject", err)
	}
	_ = resp.Body.Close()
	return &s3.CopyObjectOutput{}, nil
}

// storedAs sets the headers of how a PUT or a copy stores its object:
// content type, encryption, storage class and ACL, each when given.
func storedAs(h http.Header, contentType *string, sse types.ServerSideEncryption, kmsKey *string, class types.StorageClass, acl types.ObjectCannedACL) {
	setHeader(h, "Content-Type", aws.ToString(contentType))
	setHeader(h, "X-Amz-Server-Side-Encryption", string(sse))
	setHeader(h, "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", aws.ToString(kmsKey))
	setHeader(h, "X-Amz-Storage-Class", string(class))
	setHeader(h, "X-Amz-Acl", string(acl))
}

// setHeader sets k to v unless v is empty, as the SDK leaves a field unset.
func setHeader(h http.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}
