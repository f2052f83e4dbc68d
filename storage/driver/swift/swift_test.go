package swift

import (
	"fmt"
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/storagetest"
)

// fixture is one Swift shared by a test's subtests, each with a container
// of its own.
type fixture struct {
	sw         *testenv.Swift
	mu         sync.Mutex
	n          int
	containers map[*testing.T]string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{sw: testenv.StartSwift(t), containers: map[*testing.T]string{}}
}

func (f *fixture) container(t *testing.T) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[t]
	if !ok {
		f.n++
		c = fmt.Sprintf("c%d", f.n)
		f.containers[t] = c
	}
	return c
}

func (f *fixture) driver(t *testing.T, container string, extra driver.Params) *Driver {
	t.Helper()
	p := driver.Params{
		"authurl":   f.sw.AuthURL,
		"username":  f.sw.User,
		"password":  f.sw.Key,
		"container": container,
	}
	for k, v := range extra {
		p[k] = v
	}
	d, err := New(t.Context(), p)
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
		{"Container", nil, nil},
		// 1 MiB segments (the smallest allowed) make the large file a
		// large object of many segments, under a prefix.
		{"SmallSegmentsUnderPrefix", driver.Params{"prefix": "/berth/root", "chunksize": 1 << 20},
			[]drivertest.Option{drivertest.LargeFileSize(24 << 20)}},
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
