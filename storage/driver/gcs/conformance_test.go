package gcs

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/storagetest"
)

// TestConformance runs the shared driver suite against fake-gcs-server: one
// server and bucket for the run, one root directory per subtest, so the
// drivers a subtest builds share a store and different subtests never meet.
func TestConformance(t *testing.T) {
	g := testenv.StartGCS(t)
	// fake-gcs-server rehashes the whole upload on every chunk, so the 300
	// MiB file goes in 16 MiB chunks (the default); with -short, the 16 MiB
	// file goes in the smallest chunks GCS allows, to exercise sessions.
	chunk := defaultChunkSize
	if testing.Short() {
		chunk = minChunk
	}
	// Both ways of writing: chunks as components composed at Commit (the
	// default), and one resumable session.
	for _, mode := range []struct {
		name        string
		concurrency int
	}{{"Composite", defaultWriteConcurrency}, {"Resumable", 1}} {
		t.Run(mode.name, func(t *testing.T) {
			newDriver := func(t *testing.T) driver.Driver {
				return newDriver(t, g, driver.Params{"rootdirectory": rootFor(t.Name()), "chunksize": chunk, "writeconcurrency": mode.concurrency})
			}
			drivertest.Run(t, newDriver)
			t.Run("Maintenance", func(t *testing.T) { storagetest.Run(t, newDriver) })
		})
	}
}

// newDriver builds a driver on g's bucket with extra parameters.
func newDriver(t *testing.T, g *testenv.GCS, extra driver.Params) *Driver {
	t.Helper()
	p := driver.Params{"bucket": g.Bucket, "endpoint": g.Endpoint, "chunksize": minChunk}
	for k, v := range extra {
		p[k] = v
	}
	d, err := FromParams(t.Context(), p)
	if err != nil {
		t.Fatalf("FromParams: %v", err)
	}
	return d
}

// rootFor turns a test name into a rootdirectory.
func rootFor(test string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '/':
			return r
		}
		return '_'
	}, test)
}
