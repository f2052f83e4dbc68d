// Package storagetest is the suite that runs the content model's
// maintenance (the upload purger, garbage collection) on a storage driver:
// what they find and delete goes through the backend's own listings,
// unfinished writes (multipart uploads, uncommitted blocks, segments) and
// deletes. Every driver's tests run it beside the driver suite
// (storage/driver/drivertest), which knows nothing of the content model.
package storagetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Run runs the maintenance suite. newDriver builds a driver (wrapped or
// not; the suite wraps it with driver.Wrap); the drivers it returns for one
// *testing.T must share one backing store, and drivers for different tests
// must not see each other's files, as for drivertest.Run.
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver) {
	s := &suite{newDriver: newDriver}
	t.Run("PurgeRemovesOnlyOldUploads", s.testPurgeUploads)
	t.Run("GarbageCollectOfflineAndOnline", s.testGarbageCollect)
	t.Run("CatalogIndex", s.testCatalogIndex)
	t.Run("CatalogIndexGC", s.testCatalogIndexGC)
	t.Run("CatalogIndexCrash", s.testCatalogIndexCrash)
	t.Run("CatalogIndexOneBuilder", s.testCatalogIndexOneBuilder)
	t.Run("EndedSessionsLeaveNoRepository", s.testEndedSessionsLeaveNoRepository)
}

type suite struct {
	newDriver func(t *testing.T) driver.Driver
}

// driver returns a wrapped driver on the test's backing store.
func (s *suite) driver(t *testing.T) driver.Driver {
	t.Helper()
	return driver.Wrap(s.newDriver(t))
}

// unwrap returns the driver without the wrapper, to see which optional
// interfaces the driver itself implements.
func unwrap(d driver.Driver) driver.Driver {
	if u, ok := d.(interface{ Unwrap() driver.Driver }); ok {
		return u.Unwrap()
	}
	return d
}

// reposRoot is where the registry keeps repositories (Distribution's
// layout, which the registry does not export).
const reposRoot = "/docker/registry/v2/repositories"

func (s *suite) testPurgeUploads(t *testing.T) {
	ctx := t.Context()
	d := s.driver(t)
	reg := storage.New(d, storage.Options{}, nil)
	repo := reg.Repository("purge/me")
	// More than one part, so that object stores hold an unfinished
	// multipart upload or uncommitted blocks, not just a buffered tail.
	size := int64(64 << 10)
	if ps, ok := unwrap(d).(driver.PartSizer); ok {
		size = ps.PartSize() + 4<<10
	}
	abandon := func(seed byte) storage.Upload {
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write(bytes.Repeat([]byte{seed}, int(size))); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return u
	}
	old := abandon('o')
	// Backends keep times to the second; the purge's cutoff falls between.
	time.Sleep(1500 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(1500 * time.Millisecond)
	young := abandon('y')

	_, hasUnfinished := unwrap(d).(driver.UploadLister)
	unfinishedOf := func(u storage.Upload) []string {
		if !hasUnfinished {
			return nil
		}
		m, err := unwrap(d).(driver.UploadLister).Unfinished(ctx, reposRoot)
		if err != nil && !errors.Is(err, driver.ErrUnsupported) {
			t.Fatalf("Unfinished: %v", err)
		}
		var out []string
		for p := range m {
			if strings.Contains(p, "/_uploads/"+u.ID()+"/") {
				out = append(out, p)
			}
		}
		return out
	}
	if hasUnfinished && len(unfinishedOf(old)) == 0 {
		t.Fatal("the abandoned upload left no unfinished write to purge; the test would prove nothing")
	}

	now := time.Now()
	res, err := reg.PurgeUploads(ctx, storage.PurgeOptions{Age: now.Sub(cutoff), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("PurgeUploads: %v", err)
	}
	if res.Uploads != 1 {
		t.Errorf("PurgeUploads = %+v, want the old upload only", res)
	}
	if _, err := repo.ResumeUpload(ctx, old.ID()); !errors.Is(err, storage.ErrUploadUnknown) {
		t.Errorf("old upload after purge: err = %v, want ErrUploadUnknown", err)
	}
	if left := unfinishedOf(old); len(left) > 0 {
		t.Errorf("unfinished writes of the old upload left on the backend: %v", left)
	}

	// The young upload is whole: it resumes and commits to its content.
	u, err := repo.ResumeUpload(ctx, young.ID())
	if err != nil {
		t.Fatalf("young upload after purge: %v", err)
	}
	tail := []byte("and the rest")
	if _, err := u.Write(tail); err != nil {
		t.Fatal(err)
	}
	want := digest.FromBytes(append(bytes.Repeat([]byte{'y'}, int(size)), tail...))
	if _, err := u.Commit(ctx, want); err != nil {
		t.Fatalf("committing the young upload: %v", err)
	}
}

func (s *suite) testGarbageCollect(t *testing.T) {
	ctx := t.Context()
	d := s.driver(t)
	reg := storage.New(d, storage.Options{DeleteEnabled: true}, nil)
	repo := reg.Repository("gc/me")
	push := func(seed, tag string) (ocispec.Manifest, digest.Digest) {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
		m.SchemaVersion = 2
		for i, content := range []string{`{"seed":"` + seed + `"}`, "layer " + seed, "shared layer"} {
			desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString(content), Size: int64(len(content))}
			commitBlob(t, repo, []byte(content))
			if i == 0 {
				desc.MediaType = ocispec.MediaTypeImageConfig
				m.Config = desc
			} else {
				m.Layers = append(m.Layers, desc)
			}
		}
		payload, _ := json.Marshal(m)
		if _, err := repo.PutManifest(ctx, tag, m.MediaType, payload); err != nil {
			t.Fatal(err)
		}
		return m, digest.FromBytes(payload)
	}
	keep, _ := push("keep", "keep")
	gone, goneDigest := push("gone", "gone")
	if err := repo.DeleteManifest(ctx, goneDigest); err != nil {
		t.Fatal(err)
	}
	unreferenced := []digest.Digest{goneDigest, gone.Config.Digest, gone.Layers[0].Digest}
	kept := []digest.Digest{keep.Config.Digest, keep.Layers[0].Digest, keep.Layers[1].Digest}

	for _, opts := range []storage.GCOptions{
		// Online, everything is older than the grace period.
		{Online: true, GracePeriod: time.Hour, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }},
		{},
	} {
		res, err := reg.GarbageCollect(ctx, opts)
		if err != nil {
			t.Fatalf("GarbageCollect(online %v): %v", opts.Online, err)
		}
		wantBlobs := len(unreferenced)
		if !opts.Online {
			wantBlobs = 0 // the online run took them
		}
		if res.Blobs != wantBlobs {
			t.Errorf("GarbageCollect(online %v) deleted %d blobs, want %d", opts.Online, res.Blobs, wantBlobs)
		}
		fresh := storage.New(d, storage.Options{}, nil).Repository("gc/me")
		for _, b := range unreferenced {
			if _, err := fresh.StatBlob(ctx, b); !errors.Is(err, storage.ErrBlobUnknown) {
				t.Errorf("unreferenced %s: err = %v, want ErrBlobUnknown", b, err)
			}
		}
		for _, b := range kept {
			if _, err := fresh.StatBlob(ctx, b); err != nil {
				t.Errorf("kept %s: %v", b, err)
			}
		}
		if _, err := fresh.GetManifest(ctx, "keep"); err != nil {
			t.Errorf("kept manifest: %v", err)
		}
	}
	// The collection's lease and tombstones are gone with it.
	for _, p := range []string{"/docker/registry/v2/_berth/gc/lease", "/docker/registry/v2/_berth/gc/tombstones"} {
		if _, err := d.Stat(ctx, p); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("after the collections, %s: err = %v, want not found", p, err)
		}
	}
}

func commitBlob(t *testing.T, repo storage.Repository, content []byte) {
	t.Helper()
	ctx := context.Background()
	u, err := repo.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(content); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
		t.Fatal(err)
	}
}
