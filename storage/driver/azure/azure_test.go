package azure

import (
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/storagetest"
)

// fixture is one Azurite shared by a test's subtests, each with a
// container of its own.
type fixture struct {
	az         *testenv.Azurite
	mu         sync.Mutex
	containers map[*testing.T]string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{az: testenv.StartAzurite(t), containers: map[*testing.T]string{}}
}

// container returns t's container, created on first use.
func (f *fixture) container(t *testing.T) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[t]
	if !ok {
		c = f.az.Container(t)
		f.containers[t] = c
	}
	return c
}

// params is a shared-key configuration for container on the fixture's
// Azurite, with extra keys added.
func (f *fixture) params(container string, extra driver.Params) driver.Params {
	p := driver.Params{
		"accountname": f.az.Account,
		"accountkey":  f.az.Key,
		"container":   container,
		"serviceurl":  f.az.ServiceURL,
		"credentials": map[string]any{"type": "shared_key"},
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func (f *fixture) driver(t *testing.T, container string, extra driver.Params) *Driver {
	t.Helper()
	d, err := New(t.Context(), f.params(container, extra))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func TestDriverSuite(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		extra driver.Params
		opts  []drivertest.Option
	}{
		{"Root", nil, nil},
		// Small blocks make every write span several, and the prefix
		// proves nothing leaks out of rootdirectory. The large file is
		// smaller so its 256 blocks stay quick.
		{"SmallBlocksUnderRootDirectory", driver.Params{"rootdirectory": "/berth/root/", "chunksize": 64 << 10},
			[]drivertest.Option{drivertest.LargeFileSize(16 << 20)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newDriver := func(t *testing.T) driver.Driver {
				return f.driver(t, f.container(t), tc.extra)
			}
			drivertest.Run(t, newDriver, tc.opts...)
			t.Run("Maintenance", func(t *testing.T) { storagetest.Run(t, newDriver) })
		})
	}
}

// TestNewCreatesAMissingContainer: Distribution's driver creates its
// container, so configs written for it work on a fresh account.
func TestNewCreatesAMissingContainer(t *testing.T) {
	f := newFixture(t)
	name := "fresh-" + f.container(t) // not created by the fixture
	d := f.driver(t, name, nil)
	if _, err := f.az.ContainerClient(name).GetProperties(t.Context(), nil); err != nil {
		t.Fatalf("container %s after New: %v", name, err)
	}
	// Opening again on the now existing container is fine too.
	_ = f.driver(t, name, nil)
	write := func(p, s string) {
		if err := driver.PutContent(t.Context(), d, p, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("/a", "x")
}
