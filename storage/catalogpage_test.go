package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver/inmemory"
)

// TestCatalogPageMatchesTheWholeSortedList: pages of every size from every
// position give the names a whole sorted listing gives, among names where
// "/" and "-" or "." compete ("a-b" before "a/b"), nested repositories and
// directories that are not repositories.
func TestCatalogPageMatchesTheWholeSortedList(t *testing.T) {
	ctx := context.Background()
	reg := New(inmemory.New(), Options{}, nil)
	names := []string{"a", "a-b", "a.c", "a/b", "a/b/c", "a/b-c", "a0", "ab", "b/x/y", "b-x/y", "b.x", "c/d/e/f", "c/d-e", "team/app", "team-x", "z"}
	for _, name := range names {
		pushBlob(t, reg.Repository(name), []byte("x"))
	}
	all := slices.Sorted(slices.Values(names))
	for _, last := range append([]string{"", "a/", "b/x", "c", "c/d", "zz", "a-a", "b-x/y/z", "a//b", "A", "a/../z", "~"}, all...) {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		for _, n := range []int{1, 2, 3, 5, 100} {
			want := all[i:min(i+n, len(all))]
			got, err := reg.catalogPage(ctx, n, last)
			if err != nil {
				t.Fatalf("catalogPage(%d, %q): %v", n, last, err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("catalogPage(%d, %q) = %q, want %q", n, last, got, want)
			}
		}
	}
}
