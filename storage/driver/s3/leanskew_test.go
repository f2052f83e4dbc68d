package s3

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// skewedStore stands before MinIO as a store whose clock runs ahead by
// ahead: a request signed more than five minutes off that clock is
// refused with RequestTimeTooSkewed and the store's Date, as S3 does
// (MinIO itself allows fifteen minutes, so ahead stays below that).
func skewedStore(t *testing.T, upstream string, ahead time.Duration) string {
	t.Helper()
	return minioProxy(t, upstream, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		now := time.Now().Add(ahead)
		signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil || signed.Sub(now).Abs() > 5*time.Minute {
			w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusForbidden)
			if r.Method != http.MethodHead {
				_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the server's time is too large.</Message></Error>`))
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestLeanClockSkew: with the host's clock ten minutes behind the store's,
// the SDK learns the skew from the refusal's Date and signs its retry (and
// later requests) on the store's time; lean requests must too.
func TestLeanClockSkew(t *testing.T) {
	s := newStore(t)
	d := s.through(t, skewedStore(t, s.m.Endpoint, 10*time.Minute), nil)
	ctx := context.Background()
	// The SDK's own requests get through.
	if _, err := d.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}); err != nil {
		t.Fatalf("the SDK's ListObjectsV2 with a skewed clock: %v", err)
	}
	leanOps(t, ctx, d)
}
