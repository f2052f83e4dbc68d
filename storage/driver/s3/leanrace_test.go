package s3

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestCachedEndpointsConcurrent: the SDK's requests on one bucket run at
// once (a writer's parts, a list beside a copy). The endpoint they share
// from the cache must not be written by any of them: the SDK's auth
// resolver rebases its auth options' properties onto each request's, and
// its endpoint step writes the endpoint's signer properties into the
// resolved scheme's. Run with -race; without it the runtime may still
// stop the process with "concurrent map writes".
func TestCachedEndpointsConcurrent(t *testing.T) {
	s := newStore(t)
	d := s.driver(t, "", nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, _ = d.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: aws.String("absent")})
			}
		})
	}
	wg.Wait()
}
