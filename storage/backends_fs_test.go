package storage

import (
	"os"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/filesystem"
)

// filesystemBackend is a directory in t.TempDir(); every open is a new
// driver on the same root, as a second process would have.
func filesystemBackend() backend {
	return backend{name: "filesystem", new: func(t *testing.T) func() driver.Driver {
		root := tempDir(t)
		return func() driver.Driver { return openFilesystem(t, root) }
	}}
}

func openFilesystem(t *testing.T, root string) driver.Driver {
	t.Helper()
	d, err := filesystem.New(filesystem.Params{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// tempDir is t.TempDir for a store a Registry writes to: an upload's lease
// release is written after its request returns (lease.releaseLater), as a
// server answers before it lands, so a test may end with one on its way.
// The directory is removed once it stops changing.
func tempDir(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "berth-storage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = os.RemoveAll(root); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("removing %s: %v", root, err)
	})
	return root
}
