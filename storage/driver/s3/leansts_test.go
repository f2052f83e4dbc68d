package s3

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/berth-registry/berth/storage/driver"
)

// TestLeanSessionToken: with temporary credentials (MinIO's AssumeRole)
// lean requests carry X-Amz-Security-Token and MinIO accepts them.
func TestLeanSessionToken(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sts.New(sts.Options{
		Region:       s.m.Region,
		BaseEndpoint: aws.String(s.m.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(s.m.AccessKey, s.m.SecretKey, ""),
	})
	out, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/berth"), RoleSessionName: aws.String("berth")})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	var tokens atomic.Int64
	url := minioProxy(t, s.m.Endpoint, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/lean/") && r.Header.Get("X-Amz-Security-Token") == aws.ToString(out.Credentials.SessionToken) {
			tokens.Add(1)
		}
		next.ServeHTTP(w, r)
	})
	d := s.through(t, url, driver.Params{
		"accesskey":    aws.ToString(out.Credentials.AccessKeyId),
		"secretkey":    aws.ToString(out.Credentials.SecretAccessKey),
		"sessiontoken": aws.ToString(out.Credentials.SessionToken),
	})
	leanOps(t, ctx, d)
	if tokens.Load() < 4 {
		t.Errorf("%d lean requests carried the session token, want all", tokens.Load())
	}
}
