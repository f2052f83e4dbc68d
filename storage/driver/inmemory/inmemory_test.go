package inmemory_test

import (
	"context"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/berth-registry/berth/storage/storagetest"
)

func TestConformance(t *testing.T) {
	// The store is the driver value: every call for one test gets the same.
	var mu sync.Mutex
	stores := map[*testing.T]*inmemory.Driver{}
	newDriver := func(t *testing.T) driver.Driver {
		mu.Lock()
		defer mu.Unlock()
		if stores[t] == nil {
			stores[t] = inmemory.New()
			t.Cleanup(func() {
				mu.Lock()
				delete(stores, t)
				mu.Unlock()
			})
		}
		return stores[t]
	}
	drivertest.Run(t, newDriver, drivertest.LargeFileSize(32<<20))
	t.Run("Maintenance", func(t *testing.T) { storagetest.Run(t, newDriver) })
}

func TestOpenRefusesParameters(t *testing.T) {
	_, err := driver.Open(context.Background(), "inmemory", driver.Params{"rootdirectory": "/tmp"})
	if err == nil {
		t.Fatal("Open with a parameter succeeded")
	}
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil || d.Name() != "inmemory" {
		t.Fatalf("Open without parameters = %v, %v", d, err)
	}
}
