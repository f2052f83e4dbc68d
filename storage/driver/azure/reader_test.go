package azure

import (
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged/rangedtest"
)

// TestParallelReads runs the shared checks of parallel ranged reads on
// Azurite: ranges pinned to the ETag with If-Match, 64 KiB blocks and
// ranges so that a read spans many.
func TestParallelReads(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	const chunk = 64 << 10
	rangedtest.Run(t, rangedtest.Target{
		Chunk:    chunk,
		Upstream: f.az.ServiceURL,
		New: func(t *testing.T, endpoint string, extra driver.Params) driver.Driver {
			p := driver.Params{"chunksize": chunk}
			if endpoint != "" {
				p["serviceurl"] = endpoint
			}
			for k, v := range extra {
				p[k] = v
			}
			return f.driver(t, cont, p)
		},
	})
}
