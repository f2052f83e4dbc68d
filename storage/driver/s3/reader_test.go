package s3

import (
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged/rangedtest"
)

// TestParallelReads runs the shared checks of parallel ranged reads on
// MinIO: ranges pinned to the ETag with If-Match.
func TestParallelReads(t *testing.T) {
	s := newStore(t)
	rangedtest.Run(t, rangedtest.Target{
		Chunk:    minChunkSize,
		Upstream: s.m.Endpoint,
		KeepHost: true,
		New: func(t *testing.T, endpoint string, extra driver.Params) driver.Driver {
			if endpoint != "" {
				return s.through(t, endpoint, extra)
			}
			return s.driver(t, "", extra)
		},
	})
}
