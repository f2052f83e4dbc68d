package s3

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/storagetest"
)

// TestConformance runs the shared driver suite against MinIO: one server
// and bucket for the run, one root directory per subtest, so the drivers a
// subtest builds share a store and different subtests never meet.
func TestConformance(t *testing.T) {
	s := newStore(t)
	newDriver := func(t *testing.T) driver.Driver {
		return s.driver(t, rootFor(t.Name()), nil)
	}
	drivertest.Run(t, newDriver)
	t.Run("Maintenance", func(t *testing.T) { storagetest.Run(t, newDriver) })
}

// rootFor turns a test name into a rootdirectory of valid key characters.
func rootFor(test string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '/':
			return r
		}
		return '_'
	}, test)
}
