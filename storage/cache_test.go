package storage

import (
	"context"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

func TestLRUEvictsByCost(t *testing.T) {
	c := newLRU[string, int](10)
	c.add(c.begin(), "a", 1, 4)
	c.add(c.begin(), "b", 2, 4)
	c.get("a") // a is now the most recent
	c.add(c.begin(), "c", 3, 4)
	if _, ok := c.get("b"); ok {
		t.Error("b should have been evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	c.add(c.begin(), "huge", 4, 11)
	if _, ok := c.get("huge"); ok {
		t.Error("an entry over the budget was kept")
	}
}

// TestLRUDropsAddsRacingARemove: a value read from storage before a delete
// must not be cached after it.
func TestLRUDropsAddsRacingARemove(t *testing.T) {
	c := newLRU[string, int](10)
	token := c.begin()
	c.remove("k") // a delete lands while the reader reads storage
	c.add(token, "k", 1, 1)
	if _, ok := c.get("k"); ok {
		t.Fatal("stale value resurrected")
	}
	c.add(c.begin(), "k", 1, 1)
	if _, ok := c.get("k"); !ok {
		t.Fatal("fresh value not cached")
	}
}

// TestConcurrentReadsAndDeletes hammers a repository from many goroutines
// (run with -race) and checks that once deletes return, nothing deleted is
// served from the cache.
func TestConcurrentReadsAndDeletes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{DeleteEnabled: true})
		repo := reg.Repository("app")
		img := newImage(t, "race")
		img.push(t, repo, "v1")
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					_, _ = repo.StatBlob(ctx, img.manifest.Config.Digest)
					_, _ = repo.GetManifest(ctx, string(img.digest))
					if i == 0 {
						if err := pushQuietly(ctx, repo, []byte("concurrent same blob")); err != nil {
							t.Error(err)
						}
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = repo.DeleteBlob(ctx, img.manifest.Config.Digest)
			_ = repo.DeleteManifest(ctx, img.digest)
		}()
		wg.Wait()
		_, err := repo.StatBlob(ctx, img.manifest.Config.Digest)
		wantErr(t, err, ErrBlobUnknown)
		_, err = repo.GetManifest(ctx, string(img.digest))
		wantErr(t, err, ErrManifestUnknown)
	})
}

// pushQuietly uploads content and reports failure as an error, for use off
// the test goroutine.
func pushQuietly(ctx context.Context, repo Repository, content []byte) error {
	u, err := repo.NewUpload(ctx)
	if err != nil {
		return err
	}
	if _, err := u.Write(content); err != nil {
		return err
	}
	_, err = u.Commit(ctx, digest.FromBytes(content))
	return err
}

// TestBlobDescriptorsBoundsTheBlobCache: storage.cache.blobdescriptorsize
// is how many blob descriptors an instance keeps.
func TestBlobDescriptorsBoundsTheBlobCache(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{BlobDescriptors: 2})
		repo := reg.Repository("app")
		for i := range 5 {
			d := pushBlob(t, repo, []byte{byte(i)})
			if _, err := repo.StatBlob(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if n := reg.CacheStats()["blobs"].Entries; n != 2 {
			t.Errorf("blob descriptors cached: %d, want 2", n)
		}
	})
}
