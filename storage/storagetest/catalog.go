package storagetest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The catalog index (storage/catalogindex.go): what these tests check
// goes through the backend's own flat listings from StartAfter, its
// conditional creates (the build's lease) and its deletes.

const catalogRoot = "/docker/registry/v2/_berth/catalog"

func markerPath(name string) string {
	return catalogRoot + "/names/" + hex.EncodeToString([]byte(name))
}

// hook is an Observer calling fn as each operation begins; the context fn
// returns is the one the operation runs with.
type hook struct {
	fn func(ctx context.Context, op, path string) context.Context
}

func (h hook) Begin(ctx context.Context, _, op, p string) (context.Context, func(error)) {
	return h.fn(ctx, op, p), func(error) {}
}

func hooked(d driver.Driver, fn func(ctx context.Context, op, path string) context.Context) driver.Driver {
	return driver.Instrument(d, hook{fn: fn})
}

func cancelled(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx
}

// indexed returns a wrapped driver for a catalog test, or skips on a
// file system, whose directories the catalog walks (there is no index).
func (s *suite) indexed(t *testing.T) driver.Driver {
	t.Helper()
	d := s.driver(t)
	if driver.HasDirTimes(d) {
		t.Skip("a file system keeps no catalog index: the walk serves the catalog")
	}
	return d
}

// pushTo makes name a repository with one blob.
func pushTo(t *testing.T, reg *storage.Registry, name string) {
	t.Helper()
	commitBlob(t, reg.Repository(name), []byte("blob of "+name))
}

// pushImage makes name a repository with a tagged manifest, which a
// collection keeps.
func pushImage(t *testing.T, reg *storage.Registry, name string) {
	t.Helper()
	repo := reg.Repository(name)
	config := []byte(`{"repository":"` + name + `"}`)
	commitBlob(t, repo, config)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{}}
	m.SchemaVersion = 2
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	payload, _ := json.Marshal(m)
	if _, err := repo.PutManifest(t.Context(), "latest", m.MediaType, payload); err != nil {
		t.Fatal(err)
	}
}

// walked is the catalog the walk serves, the truth the index must match.
func walked(t *testing.T, d driver.Driver) []string {
	t.Helper()
	names, err := storage.New(d, storage.Options{NoCatalogIndex: true}, nil).Catalog(t.Context(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// after returns the names of want strictly after last, at most n.
func after(want []string, n int, last string) []string {
	i, _ := slices.BinarySearch(want, last)
	for i < len(want) && want[i] <= last {
		i++
	}
	out := want[i:]
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// checkPages compares every page of reg's catalog, of several sizes from
// every position, with want.
func checkPages(t *testing.T, reg *storage.Registry, want []string, when string) {
	t.Helper()
	ctx := t.Context()
	for _, last := range append([]string{"", "team/", "team-", "zz", "a"}, want...) {
		for _, n := range []int{0, 1, 2, 3, 100} {
			got, err := reg.Catalog(ctx, n, last)
			if err != nil {
				t.Fatalf("%s: Catalog(%d, %q): %v", when, n, last, err)
			}
			if w := after(want, n, last); !slices.Equal(got, w) {
				t.Fatalf("%s: Catalog(%d, %q) = %q, want %q", when, n, last, got, w)
			}
		}
	}
}

func (s *suite) testCatalogIndex(t *testing.T) {
	ctx := t.Context()
	d := s.indexed(t)
	// Written without markers: by a Berth before the index, or by
	// Distribution.
	old := storage.New(d, storage.Options{NoCatalogIndex: true}, nil)
	names := []string{"team", "team-x", "team/app", "team0", "team/app/web", "a"}
	for _, name := range names {
		pushTo(t, old, name)
	}
	up, err := old.Repository("up/only").NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if err := up.Close(ctx); err != nil {
		t.Fatal(err)
	}
	names = append(names, "up/only")
	want := slices.Sorted(slices.Values(names))

	// Before complete, the catalog is the walk's; the build it starts in
	// the background is kept from taking the lease.
	noBuild := hooked(d, func(ctx context.Context, op, p string) context.Context {
		if op == "create" && strings.HasPrefix(p, catalogRoot+"/lease/") {
			return cancelled(ctx)
		}
		return ctx
	})
	checkPages(t, storage.New(noBuild, storage.Options{}, nil), want, "before the index is complete")
	if ok, err := old.CatalogIndexComplete(ctx); err != nil || ok {
		t.Fatalf("CatalogIndexComplete of a registry without the index = %v, %v", ok, err)
	}

	// A repository created while the build runs, after its walk: listed
	// from the marker its creator wrote.
	other := storage.New(d, storage.Options{}, nil)
	var once sync.Once
	builder := storage.New(hooked(d, func(ctx context.Context, op, p string) context.Context {
		if op == "putcontent" && strings.HasPrefix(p, catalogRoot+"/names/") {
			once.Do(func() { pushTo(t, other, "during/build") })
		}
		return ctx
	}), storage.Options{}, nil)
	if err := builder.BuildCatalogIndex(ctx); err != nil {
		t.Fatalf("BuildCatalogIndex: %v", err)
	}
	want = slices.Sorted(slices.Values(append(names, "during/build")))
	reader := storage.New(d, storage.Options{}, nil)
	if ok, err := reader.CatalogIndexComplete(ctx); err != nil || !ok {
		t.Fatalf("after the build, CatalogIndexComplete = %v, %v", ok, err)
	}
	for _, name := range want {
		if _, err := d.Stat(ctx, markerPath(name)); err != nil {
			t.Errorf("marker of %s: %v", name, err)
		}
	}
	checkPages(t, reader, want, "from the index")

	// Two registries on one store: what one creates, the other lists.
	pushTo(t, other, "fleet/new")
	want = slices.Sorted(slices.Values(append(want, "fleet/new")))
	checkPages(t, reader, want, "after another registry pushed")
}

// testCatalogIndexGC: a collection prunes the marker of a repository
// emptied entirely (listed until then, as an empty directory is on a
// file system) and writes the markers that are missing.
func (s *suite) testCatalogIndexGC(t *testing.T) {
	ctx := t.Context()
	d := s.indexed(t)
	reg := storage.New(d, storage.Options{}, nil)
	for _, name := range []string{"keep", "lost/marker"} {
		pushImage(t, reg, name)
	}
	u, err := reg.Repository("emptied").NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reg.BuildCatalogIndex(ctx); err != nil {
		t.Fatal(err)
	}
	u, err = reg.Repository("emptied").ResumeUpload(ctx, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, markerPath("lost/marker")); err != nil {
		t.Fatal(err)
	}
	reader := func() *storage.Registry { return storage.New(d, storage.Options{}, nil) }
	checkPages(t, reader(), []string{"emptied", "keep"}, "before the collection")

	// Online, a marker younger than the prune age stays.
	if _, err := reg.GarbageCollect(ctx, storage.GCOptions{Online: true, GracePeriod: time.Hour}); err != nil {
		t.Fatal(err)
	}
	checkPages(t, reader(), []string{"emptied", "keep", "lost/marker"}, "after a collection with a young marker")
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	if _, err := reg.GarbageCollect(ctx, storage.GCOptions{Online: true, GracePeriod: time.Hour, Now: later}); err != nil {
		t.Fatal(err)
	}
	checkPages(t, reader(), []string{"keep", "lost/marker"}, "after the collection")
	// The collecting instance forgets the markers it pruned: it writes
	// this one again when the repository comes back. (Another instance
	// trusts a marker it wrote for 30 minutes, and a collection prunes
	// only those older than an hour; this test's clock jumped 48 hours.)
	pushImage(t, reg, "emptied")
	checkPages(t, reader(), []string{"emptied", "keep", "lost/marker"}, "after the repository came back")
}

// testCatalogIndexCrash: a request cut off between the marker and the
// content leaves a marker and no repository (listed until a collection
// prunes it), never a repository without its marker; one cut off before
// the marker landed leaves nothing.
func (s *suite) testCatalogIndexCrash(t *testing.T) {
	ctx := t.Context()
	d := s.indexed(t)
	if err := storage.New(d, storage.Options{}, nil).BuildCatalogIndex(ctx); err != nil {
		t.Fatal(err)
	}
	cut := func(op, prefix string) *storage.Registry {
		return storage.New(hooked(d, func(ctx context.Context, o, p string) context.Context {
			if o == op && strings.HasPrefix(p, prefix) {
				return cancelled(ctx)
			}
			return ctx
		}), storage.Options{}, nil)
	}
	// Cut at the marker: nothing of the repository is written.
	if _, err := cut("putcontent", markerPath("crash/before")).Repository("crash/before").NewUpload(ctx); err == nil {
		t.Fatal("NewUpload succeeded with its marker write cancelled")
	}
	if _, err := d.List(ctx, reposRoot+"/crash/before"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("after a cut at the marker, the repository's directory: err = %v, want not found", err)
	}
	// Cut after the marker, at the content.
	crash := cut("writer", reposRoot+"/crash/after/")
	if u, err := crash.Repository("crash/after").NewUpload(ctx); err == nil {
		// Some drivers open a writer without a request: the cut comes
		// at the first one.
		_, _ = u.Write([]byte("x"))
		_ = u.Close(cancelled(ctx))
	}
	if _, err := d.Stat(ctx, markerPath("crash/after")); err != nil {
		t.Fatalf("marker of crash/after: %v", err)
	}
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	if _, err := storage.New(d, storage.Options{}, nil).GarbageCollect(ctx, storage.GCOptions{Online: true, GracePeriod: time.Hour, Now: later}); err != nil {
		t.Fatal(err)
	}
	checkPages(t, storage.New(d, storage.Options{}, nil), walked(t, d), "after a collection")
}

// testCatalogIndexOneBuilder: of two builds at once, one builds; the
// other is refused with ErrLeaseHeld and writes nothing.
func (s *suite) testCatalogIndexOneBuilder(t *testing.T) {
	ctx := t.Context()
	d := s.indexed(t)
	old := storage.New(d, storage.Options{NoCatalogIndex: true}, nil)
	for _, name := range []string{"one", "two", "three"} {
		pushTo(t, old, name)
	}
	var secondPuts atomic.Int64
	second := storage.New(hooked(d, func(ctx context.Context, op, p string) context.Context {
		if op == "putcontent" && strings.HasPrefix(p, catalogRoot+"/") {
			secondPuts.Add(1)
		}
		return ctx
	}), storage.Options{}, nil)
	var secondErr error
	var once sync.Once
	first := storage.New(hooked(d, func(ctx context.Context, op, p string) context.Context {
		if op == "putcontent" && strings.HasPrefix(p, catalogRoot+"/names/") {
			once.Do(func() { secondErr = second.BuildCatalogIndex(ctx) })
		}
		return ctx
	}), storage.Options{}, nil)
	if err := first.BuildCatalogIndex(ctx); err != nil {
		t.Fatalf("first build: %v", err)
	}
	if !errors.Is(secondErr, storage.ErrLeaseHeld) {
		t.Errorf("second build during the first: err = %v, want ErrLeaseHeld", secondErr)
	}
	if n := secondPuts.Load(); n != 0 {
		t.Errorf("the refused build wrote %d objects of the index", n)
	}
	checkPages(t, storage.New(d, storage.Options{}, nil), walked(t, d), "after the build")
}

// testEndedSessionsLeaveNoRepository: upload sessions make a repository
// while they last; once the last one ended without a blob linked (one
// cancelled, one whose digest did not match) the repository is gone from
// the catalog, though a repository nested in it stays, and its tag list
// is NAME_UNKNOWN. A driver that keeps
// directories (driver.ParentKeeper) keeps its _uploads, empty, for the
// next push; the others keep nothing.
func (s *suite) testEndedSessionsLeaveNoRepository(t *testing.T) {
	ctx := t.Context()
	d := s.driver(t)
	reg := storage.New(d, storage.Options{NoCatalogIndex: true}, nil)
	pushTo(t, reg, "keep")
	pushTo(t, reg, "gone/nested")
	repo := reg.Repository("gone")
	start := func() storage.Upload {
		t.Helper()
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write([]byte("not to be kept")); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if u, err = repo.ResumeUpload(ctx, u.ID()); err != nil {
			t.Fatal(err)
		}
		checkPages(t, reg, []string{"gone", "gone/nested", "keep"}, "with a session")
		return u
	}
	gone := func(when string) {
		t.Helper()
		checkPages(t, reg, []string{"gone/nested", "keep"}, when)
		if _, _, err := repo.Tags(ctx, 0, ""); !errors.Is(err, storage.ErrNameUnknown) {
			t.Fatalf("%s: tags of the repository: %v, want NAME_UNKNOWN", when, err)
		}
		uploads := "/docker/registry/v2/repositories/gone/_uploads"
		left, err := d.List(ctx, uploads)
		if _, keeps := unwrap(d).(driver.ParentKeeper); keeps {
			if err != nil || len(left) != 0 {
				t.Fatalf("%s: _uploads holds %q (%v), want it kept empty", when, left, err)
			}
		} else if !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("%s: _uploads holds %q (%v), want nothing", when, left, err)
		}
	}
	if err := start().Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	gone("after the cancel")
	if _, err := start().Commit(ctx, digest.FromString("other bytes")); !errors.Is(err, storage.ErrDigestInvalid) {
		t.Fatalf("commit of other bytes: %v, want DIGEST_INVALID", err)
	}
	gone("after the failed commit")
	pushTo(t, reg, "gone")
	checkPages(t, reg, []string{"gone", "gone/nested", "keep"}, "after a blob was pushed")
}
