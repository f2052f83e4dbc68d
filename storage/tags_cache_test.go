package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// TestTagListCacheSeesEveryChange checks that the cached tag list of a
// file system repository is dropped when any instance adds or deletes a
// tag, however old the directory was when it was cached.
func TestTagListCacheSeesEveryChange(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	open := func() driver.Driver { return openFilesystem(t, root) }
	reg := newRegistry(open, Options{DeleteEnabled: true})
	other := newRegistry(open, Options{DeleteEnabled: true}) // a second instance
	repo, repo2 := reg.Repository("app"), other.Repository("app")
	img := newImage(t, "cache")
	img.push(t, repo, "a")
	img.push(t, repo, "b")
	dir := filepath.Join(root, filepath.FromSlash(tagsDir("app")))
	age := func() {
		// Old enough for the listing to be cached.
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
	}
	list := func(want ...string) {
		t.Helper()
		for range 2 { // the second time from the cache, when cached
			got, _, err := repo.Tags(ctx, 0, "")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Tags = %q, want %q", got, want)
			}
		}
	}
	age()
	list("a", "b")
	if reg.cache.tagLists.len() != 1 {
		t.Fatal("the listing of an unchanged directory was not cached")
	}
	img.push(t, repo2, "c")
	list("a", "b", "c")
	age()
	list("a", "b", "c")
	if err := repo2.DeleteTag(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	list("a", "c")
	// Pages of a cached list are copies: changing one changes nothing.
	age()
	list("a", "c")
	p, _, _ := repo.Tags(ctx, 1, "")
	p[0] = "zzz"
	list("a", "c")
}
