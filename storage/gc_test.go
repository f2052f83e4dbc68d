package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gcTree is a registry with shared layers, a multi-arch index, referrers,
// an untagged manifest, a deleted manifest and an orphan blob.
type gcTree struct {
	reg *Registry
	// unreferenced are the blobs no manifest references.
	unreferenced []digest.Digest
	// untagged are the blobs only the untagged manifest (and its referrer)
	// keep, which --delete-untagged frees as well.
	untagged []digest.Digest
	// untaggedManifests are the manifests --delete-untagged deletes.
	untaggedManifests []digest.Digest
	// kept are blobs every collection keeps.
	kept []digest.Digest
}

func buildGCTree(t *testing.T, d driver.Driver) *gcTree {
	t.Helper()
	ctx := context.Background()
	reg := New(d, Options{DeleteEnabled: true}, nil)
	app, other := reg.Repository("app"), reg.Repository("other")
	g := &gcTree{reg: reg}

	base := newImage(t, "base")
	base.push(t, app, "v1")
	base.push(t, other, "v1") // the same blobs from a second repository
	g.kept = append(g.kept, base.digest, base.manifest.Config.Digest, base.manifest.Layers[0].Digest, base.manifest.Layers[1].Digest)

	// A deleted manifest sharing a layer with base: its own config and
	// second layer become unreferenced, the shared layer does not.
	gone := newImage(t, "gone", func(m *ocispec.Manifest) { m.Layers[0] = base.manifest.Layers[0] })
	gone.layers[0] = base.layers[0]
	gone.push(t, app, gone.digest.String())
	if err := app.DeleteManifest(ctx, gone.digest); err != nil {
		t.Fatal(err)
	}
	g.unreferenced = append(g.unreferenced, gone.digest, gone.manifest.Config.Digest, gone.manifest.Layers[1].Digest)

	// A multi-arch index: its children are untagged but kept through it.
	amd, arm := newImage(t, "amd64"), newImage(t, "arm64")
	amd.push(t, app, amd.digest.String())
	arm.push(t, app, arm.digest.String())
	idx := indexOf(t, amd, arm)
	if _, err := app.PutManifest(ctx, "multi", ocispec.MediaTypeImageIndex, idx); err != nil {
		t.Fatal(err)
	}
	g.kept = append(g.kept, digest.FromBytes(idx), amd.digest, arm.digest, amd.manifest.Config.Digest, arm.manifest.Layers[1].Digest)

	// A signature of base: untagged, kept as its subject is.
	sig := newImage(t, "sig", func(m *ocispec.Manifest) {
		m.Subject = &ocispec.Descriptor{MediaType: base.mediaType, Digest: base.digest, Size: int64(len(base.payload))}
	})
	sig.push(t, app, sig.digest.String())
	g.kept = append(g.kept, sig.digest, sig.manifest.Layers[0].Digest)

	// An untagged image and its referrer: kept, unless untagged manifests
	// are deleted.
	loose := newImage(t, "loose")
	loose.push(t, app, loose.digest.String())
	looseSig := newImage(t, "loose-sig", func(m *ocispec.Manifest) {
		m.Subject = &ocispec.Descriptor{MediaType: loose.mediaType, Digest: loose.digest, Size: int64(len(loose.payload))}
	})
	looseSig.push(t, app, looseSig.digest.String())
	for _, img := range []*image{loose, looseSig} {
		g.untagged = append(g.untagged, img.digest, img.manifest.Config.Digest, img.manifest.Layers[0].Digest, img.manifest.Layers[1].Digest)
		g.untaggedManifests = append(g.untaggedManifests, img.digest)
	}

	g.unreferenced = append(g.unreferenced, pushBlob(t, other, []byte("an upload nobody used")))
	return g
}

func gcDrivers(t *testing.T) map[string]driver.Driver {
	return map[string]driver.Driver{
		"inmemory":   inmemory.New(),
		"filesystem": openFilesystem(t, t.TempDir()),
	}
}

func sorted(ds []digest.Digest) []digest.Digest {
	out := slices.Clone(ds)
	slices.Sort(out)
	return slices.Compact(out)
}

func collect(t *testing.T, reg *Registry, opts GCOptions) (blobs, manifests []digest.Digest, res GCResult) {
	t.Helper()
	opts.Report = func(it GCItem) {
		if it.Kind == "blob" {
			blobs = append(blobs, it.Digest)
		} else {
			manifests = append(manifests, it.Digest)
		}
	}
	res, err := reg.GarbageCollect(context.Background(), opts)
	if err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	return sorted(blobs), sorted(manifests), res
}

func blobExists(t *testing.T, reg *Registry, d digest.Digest) bool {
	t.Helper()
	_, err := reg.driver.Stat(context.Background(), blobDataPath(d))
	if err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestGCDryRunListsExactlyTheUnreferencedBlobs(t *testing.T) {
	for name, d := range gcDrivers(t) {
		t.Run(name, func(t *testing.T) {
			g := buildGCTree(t, d)
			before := tree(t, d)
			blobs, manifests, res := collect(t, g.reg, GCOptions{DryRun: true})
			if want := sorted(g.unreferenced); !slices.Equal(blobs, want) {
				t.Errorf("would delete blobs\n %v\nwant\n %v", blobs, want)
			}
			if len(manifests) != 0 {
				t.Errorf("would delete manifests %v without --delete-untagged", manifests)
			}
			if res.Blobs != len(g.unreferenced) || res.BytesFreed <= 0 {
				t.Errorf("result = %+v", res)
			}
			if after := tree(t, d); len(after) != len(before) {
				t.Errorf("dry run changed the tree: %d files, then %d", len(before), len(after))
			}
		})
	}
}

func TestGCDeletesUnreferencedBlobsAndTheirLinks(t *testing.T) {
	for name, d := range gcDrivers(t) {
		t.Run(name, func(t *testing.T) {
			g := buildGCTree(t, d)
			blobs, _, _ := collect(t, g.reg, GCOptions{})
			if want := sorted(g.unreferenced); !slices.Equal(blobs, want) {
				t.Errorf("deleted %v, want %v", blobs, want)
			}
			for _, b := range g.unreferenced {
				if blobExists(t, g.reg, b) {
					t.Errorf("blob %s survived", b)
				}
			}
			for _, b := range append(g.kept, g.untagged...) {
				if !blobExists(t, g.reg, b) {
					t.Errorf("blob %s was deleted", b)
				}
			}
			orphan := g.unreferenced[len(g.unreferenced)-1]
			if _, err := d.Stat(context.Background(), layerLinkPath("other", orphan)); !isNotFound(err) {
				t.Errorf("layer link to a swept blob: stat err = %v, want not found", err)
			}
			// A second run finds nothing.
			if blobs, _, _ := collect(t, New(d, Options{}, nil), GCOptions{}); len(blobs) != 0 {
				t.Errorf("second run deleted %v", blobs)
			}
		})
	}
}

func TestGCDeleteUntaggedKeepsIndexChildrenAndReferrersOfKept(t *testing.T) {
	for name, d := range gcDrivers(t) {
		t.Run(name, func(t *testing.T) {
			g := buildGCTree(t, d)
			blobs, manifests, res := collect(t, g.reg, GCOptions{DeleteUntagged: true})
			if want := sorted(append(g.unreferenced, g.untagged...)); !slices.Equal(blobs, want) {
				t.Errorf("deleted blobs\n %v\nwant\n %v", blobs, want)
			}
			if want := sorted(g.untaggedManifests); !slices.Equal(manifests, want) {
				t.Errorf("deleted manifests %v, want %v", manifests, want)
			}
			if res.Manifests != len(g.untaggedManifests) {
				t.Errorf("result = %+v", res)
			}
			for _, b := range g.kept {
				if !blobExists(t, g.reg, b) {
					t.Errorf("blob %s was deleted", b)
				}
			}
			reg := New(d, Options{}, nil)
			for _, m := range g.untaggedManifests {
				if _, err := reg.Repository("app").GetManifest(context.Background(), m.String()); !isErr(err, ErrManifestUnknown) {
					t.Errorf("untagged manifest %s: err = %v, want manifest unknown", m, err)
				}
			}
		})
	}
}

// pushImage pushes img's blobs and manifest, reporting rather than failing
// the test, as it runs outside the test's goroutine.
func pushImage(ctx context.Context, repo Repository, img *image, tag string) error {
	for _, b := range append([][]byte{img.config}, img.layers...) {
		u, err := repo.NewUpload(ctx)
		if err != nil {
			return err
		}
		if _, err := u.Write(b); err != nil {
			return err
		}
		if _, err := u.Commit(ctx, digest.FromBytes(b)); err != nil {
			return err
		}
	}
	_, err := repo.PutManifest(ctx, tag, img.mediaType, img.payload)
	return err
}

// ageFiles sets every file below root to a time before any grace period.
func ageFiles(t *testing.T, root string) {
	t.Helper()
	old := time.Now().Add(-48 * time.Hour)
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGCOnlineKeepsEverythingAConcurrentPushNeeds(t *testing.T) {
	for _, name := range []string{"inmemory", "filesystem"} {
		t.Run(name, func(t *testing.T) {
			var d driver.Driver
			root := t.TempDir()
			if name == "inmemory" {
				d = inmemory.New()
			} else {
				d = openFilesystem(t, root)
			}
			g := buildGCTree(t, d)
			for i := range 20 { // enough content that a run takes a while
				newImage(t, fmt.Sprint("filler", i)).push(t, g.reg.Repository("filler"), "t"+fmt.Sprint(i))
			}
			if name == "filesystem" {
				ageFiles(t, root)
			}
			ctx := context.Background()
			live := g.reg.Repository("live")
			var pushed []*image
			for round := range 5 {
				started := make(chan struct{})
				var once sync.Once
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var pushErr error
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-started
					for i := 0; ; i++ {
						img := newImage(t, fmt.Sprintf("live-%d-%d", round, i))
						if err := pushImage(ctx, live, img, fmt.Sprintf("r%d-%d", round, i)); err != nil {
							pushErr = err
							return
						}
						pushed = append(pushed, img)
						select {
						case <-stop:
							return
						default:
						}
					}
				}()
				_, err := g.reg.GarbageCollect(ctx, GCOptions{
					Online: true, GracePeriod: time.Second,
					Now: func() time.Time { once.Do(func() { close(started) }); return time.Now() },
				})
				close(stop)
				wg.Wait()
				if err != nil {
					t.Fatalf("GarbageCollect: %v", err)
				}
				if pushErr != nil {
					t.Fatalf("push during GC: %v", pushErr)
				}
				t.Logf("round %d: %d images pushed so far", round, len(pushed))
			}
			fresh := New(d, Options{}, nil)
			for _, img := range pushed {
				refs := append([]digest.Digest{img.digest, img.manifest.Config.Digest}, img.manifest.Layers[0].Digest, img.manifest.Layers[1].Digest)
				for _, b := range refs {
					if _, err := fresh.Repository("live").StatBlob(ctx, b); err != nil && b != img.digest {
						t.Errorf("blob %s of a pushed image: %v", b, err)
					}
				}
				if _, err := fresh.Repository("live").GetManifest(ctx, img.digest.String()); err != nil {
					t.Errorf("manifest %s: %v", img.digest, err)
				}
			}
			if name == "filesystem" {
				for _, b := range g.unreferenced {
					if blobExists(t, fresh, b) {
						t.Errorf("old unreferenced blob %s survived an online run", b)
					}
				}
			}
		})
	}
}
