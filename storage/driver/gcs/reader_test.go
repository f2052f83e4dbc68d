package gcs

import (
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged/rangedtest"
)

// TestParallelReads runs the shared checks of parallel ranged reads on
// fake-gcs-server: ranges read from the first answer's generation,
// 256 KiB chunks and ranges so that a read spans many.
func TestParallelReads(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	rangedtest.Run(t, rangedtest.Target{
		Chunk:    minChunk,
		Upstream: g.Endpoint,
		New: func(t *testing.T, endpoint string, extra driver.Params) driver.Driver {
			p := driver.Params{"rootdirectory": root}
			if endpoint != "" {
				p["endpoint"] = endpoint
			}
			for k, v := range extra {
				p[k] = v
			}
			return newDriver(t, g, p)
		},
	})
}
