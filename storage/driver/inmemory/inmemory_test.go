package inmemory_test

import (
	"context"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

func TestConformance(t *testing.T) {
	// The store is the driver value: every call for one test gets the same.
	var mu sync.Mutex
	stores := map[*testing.T]*inmemory.Driver{}
	drivertest.Run(t, func(t *testing.T) driver.Driver {
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
	}, drivertest.LargeFileSize(32<<20))
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
