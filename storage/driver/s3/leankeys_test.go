package s3

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver"
)

// TestLeanKeysNeedingEscapes: under a root directory with characters the
// URL path must escape, a lean PUT stores the object under the key the
// SDK names it by, and lean HEAD, GET and DELETE find what the SDK put.
func TestLeanKeysNeedingEscapes(t *testing.T) {
	s := newStore(t)
	root := "/r o+o=t!$&'()*,;:@ü日/%41~"
	d := s.driver(t, root, nil)
	if d.lean == nil {
		t.Fatal("no lean path")
	}
	ctx := context.Background()
	leanOps(t, ctx, d)
	if err := d.PutContent(ctx, "/f", []byte("lean")); err != nil {
		t.Fatal(err)
	}
	key := d.key("/f")
	if _, err := s.m.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("the SDK does not find %q the lean PUT stored: %v", key, err)
	}
	if _, err := d.c.PutObject(ctx, &s3.PutObjectInput{Bucket: d.bucket, Key: aws.String(d.key("/g")), Body: strings.NewReader("sdk")}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.StatFile(ctx, "/g"); err != nil {
		t.Fatalf("lean HEAD of what the SDK stored: %v", err)
	}
	if err := d.Delete(ctx, "/g"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := d.StatFile(ctx, "/g"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
}
