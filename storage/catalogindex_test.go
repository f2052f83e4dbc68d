package storage

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage/driver/inmemory"
)

// TestCatalogIndexReadOnlyBuildsNothing: a read-only server serves the
// catalog by the walk and writes no index.
func TestCatalogIndexReadOnlyBuildsNothing(t *testing.T) {
	ctx := context.Background()
	mem := inmemory.New()
	pushBlob(t, New(mem, Options{NoCatalogIndex: true}, nil).Repository("team/app"), []byte("x"))
	reg := New(mem, Options{NoCatalogBuild: true}, nil)
	got, err := reg.Catalog(ctx, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"team/app"}) {
		t.Fatalf("Catalog = %q, want [team/app]", got)
	}
	// A build would have been marked as running before its goroutine
	// started.
	reg.catalog.mu.Lock()
	building := reg.catalog.building
	reg.catalog.mu.Unlock()
	if building {
		t.Error("a read-only server started building the catalog index")
	}
	for p := range tree(t, mem) {
		if strings.HasPrefix(p, catalogRoot+"/") {
			t.Errorf("a read-only server wrote %s", p)
		}
	}
}

// TestCatalogMarkerKeysKeepTheNamesOrder: the hex of names sorts as the
// names do, prefixes included, so a listing of the index from
// hex(last) is the catalog's next page.
func TestCatalogMarkerKeysKeepTheNamesOrder(t *testing.T) {
	names := []string{"a", "a-b", "a.c", "a/b", "a0", "team", "team-x", "team/app", "team/app/web", "team0", "z"}
	var keys []string
	for _, n := range names {
		keys = append(keys, catalogMarkerPath(n))
		if got, ok := markerName(strings.TrimPrefix(catalogMarkerPath(n), catalogNamesDir+"/")); !ok || got != n {
			t.Errorf("markerName(marker of %q) = %q, %v", n, got, ok)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("marker keys out of the names' order: %q", keys)
	}
	for _, bad := range []string{"zz", "41", "2f61"} { // not hex; "A"; "/a"
		if name, ok := markerName(bad); ok {
			t.Errorf("markerName(%q) = %q, want refused", bad, name)
		}
	}
}
