package storage

import (
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/filesystem"
)

// filesystemBackend is a directory in t.TempDir(); every open is a new
// driver on the same root, as a second process would have.
func filesystemBackend() backend {
	return backend{name: "filesystem", new: func(t *testing.T) func() driver.Driver {
		root := t.TempDir()
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
