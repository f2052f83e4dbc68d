package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// listObjects and deleteObjects are the SDK's ListObjectsV2 and
// DeleteObjects, sent lean (see lean.go) as headObject and the others
// are: every upload commit lists the session's directory and its state
// objects and deletes what it found, and through the SDK's stack those
// three requests cost more CPU than the lean PUT of the layer's bytes.

// maxListBody bounds the answer to one listing read into memory: a page
// of 1000 keys of up to 1 KiB each, escaped, with room to spare.
const maxListBody = 8 << 20

func (d *Driver) listObjects(ctx context.Context, in *s3.ListObjectsV2Input) (*s3.ListObjectsV2Output, error) {
	if d.lean == nil || !d.lean.listIn.only(in) {
		return d.c.ListObjectsV2(ctx, in)
	}
	q := url.Values{"list-type": {"2"}}
	set := func(k string, v *string) {
		if v != nil {
			q.Set(k, *v)
		}
	}
	set("prefix", in.Prefix)
	set("delimiter", in.Delimiter)
	set("continuation-token", in.ContinuationToken)
	set("start-after", in.StartAfter)
	if in.MaxKeys != nil {
		q.Set("max-keys", strconv.Itoa(int(*in.MaxKeys)))
	}
	resp, err := d.lean.callQuery(ctx, http.MethodGet, "", q.Encode(), nil, nil)
	if err != nil {
		return nil, opErr("ListObjectsV2", err)
	}
	defer resp.Body.Close()
	var res struct {
		Contents []struct {
			Key          string
			LastModified time.Time
			ETag         string
			Size         int64
		}
		CommonPrefixes        []struct{ Prefix string }
		IsTruncated           bool
		NextContinuationToken string
	}
	if err := decodeXML(resp.Body, &res); err != nil {
		return nil, opErr("ListObjectsV2", err)
	}
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(res.IsTruncated)}
	if res.NextContinuationToken != "" {
		out.NextContinuationToken = aws.String(res.NextContinuationToken)
	}
	for _, o := range res.Contents {
		out.Contents = append(out.Contents, types.Object{
			Key: aws.String(o.Key), LastModified: aws.Time(o.LastModified), ETag: aws.String(o.ETag), Size: aws.Int64(o.Size),
		})
	}
	for _, p := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, types.CommonPrefix{Prefix: aws.String(p.Prefix)})
	}
	out.KeyCount = aws.Int32(int32(len(out.Contents) + len(out.CommonPrefixes)))
	return out, nil
}

// listPages calls page with each page of the listing in, in order, as the
// SDK's paginator would: it follows the continuation token while the
// listing is truncated, and stops on a token that repeats.
func (d *Driver) listPages(ctx context.Context, in *s3.ListObjectsV2Input, page func(*s3.ListObjectsV2Output) error) error {
	c := *in
	in = &c
	for {
		out, err := d.listObjects(ctx, in)
		if err != nil {
			return err
		}
		if err := page(out); err != nil {
			return err
		}
		next := aws.ToString(out.NextContinuationToken)
		if !aws.ToBool(out.IsTruncated) || next == "" || next == aws.ToString(in.ContinuationToken) {
			return nil
		}
		in.ContinuationToken = aws.String(next)
	}
}

func (d *Driver) deleteObjects(ctx context.Context, in *s3.DeleteObjectsInput) (*s3.DeleteObjectsOutput, error) {
	if d.lean == nil || !d.lean.deleteIn.only(in) || in.Delete == nil || !d.lean.deleteList.only(in.Delete) {
		return d.c.DeleteObjects(ctx, in)
	}
	type object struct {
		Key string `xml:"Key"`
	}
	req := struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ Delete"`
		Objects []object `xml:"Object"`
		Quiet   bool     `xml:"Quiet,omitempty"`
	}{Quiet: aws.ToBool(in.Delete.Quiet)}
	for _, o := range in.Delete.Objects {
		if o.VersionId != nil || o.ETag != nil || o.LastModifiedTime != nil || o.Size != nil {
			return d.c.DeleteObjects(ctx, in)
		}
		req.Objects = append(req.Objects, object{Key: aws.ToString(o.Key)})
	}
	body, err := xml.Marshal(req)
	if err != nil {
		return nil, opErr("DeleteObjects", err)
	}
	// S3 refuses a batch delete without a checksum of its body.
	sum := md5.Sum(body)
	h := http.Header{}
	h.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	h.Set("Content-Type", "application/xml")
	resp, err := d.lean.callQuery(ctx, http.MethodPost, "", "delete=", h, bytes.NewReader(body))
	if err != nil {
		return nil, opErr("DeleteObjects", err)
	}
	defer resp.Body.Close()
	var res struct {
		Deleted []struct{ Key string }
		Error   []struct{ Key, Code, Message string }
	}
	if err := decodeXML(resp.Body, &res); err != nil {
		return nil, opErr("DeleteObjects", err)
	}
	out := &s3.DeleteObjectsOutput{}
	for _, o := range res.Deleted {
		out.Deleted = append(out.Deleted, types.DeletedObject{Key: aws.String(o.Key)})
	}
	for _, e := range res.Error {
		out.Errors = append(out.Errors, types.Error{Key: aws.String(e.Key), Code: aws.String(e.Code), Message: aws.String(e.Message)})
	}
	return out, nil
}

// decodeXML reads an answer's XML body into v.
func decodeXML(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxListBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxListBody {
		return fmt.Errorf("s3: answer of more than %d bytes", maxListBody)
	}
	return xml.Unmarshal(b, v)
}
