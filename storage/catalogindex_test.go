package storage

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
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

// slowMarkers holds the catalog marker writes it is asked for until
// release is closed, and counts them.
type slowMarkers struct {
	driver.Driver
	n       *atomic.Int32
	release chan struct{}
}

func (s slowMarkers) PutContent(ctx context.Context, p string, b []byte) error {
	if strings.HasPrefix(p, catalogNamesDir+"/") {
		s.n.Add(1)
		<-s.release
	}
	return driver.PutContent(ctx, s.Driver, p, b)
}

// TestUploadsStartedTogetherWriteOneMarker: docker starts the uploads of
// five layers at once in a new repository; each wrote the repository's
// catalog marker (five PUTs where one does, seen in S8's request count).
// They now wait for the one in flight, and none goes on before it is
// written.
func TestUploadsStartedTogetherWriteOneMarker(t *testing.T) {
	ctx := context.Background()
	var n atomic.Int32
	release := make(chan struct{})
	repo := New(slowMarkers{Driver: inmemory.New(), n: &n, release: release}, Options{}, nil).Repository("team/app")
	var started atomic.Int32
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			started.Add(1)
			u, err := repo.NewUpload(ctx)
			if err == nil {
				err = u.Cancel(ctx)
			}
			errs <- err
		}()
	}
	// Let the five reach the marker before the first write ends. Were
	// they slower, the count would be lower, never higher: the check
	// cannot fail for that.
	for started.Load() < 5 {
		runtime.Gosched()
	}
	time.Sleep(100 * time.Millisecond)
	if len(errs) > 0 {
		t.Fatal("an upload started before the repository's marker was written")
	}
	close(release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("five uploads started together wrote the marker %d times, want 1", got)
	}
}
