package storage

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// twoInstances returns two Registries on one store, as two servers behind
// a load balancer are, sharing a clock the test moves.
func twoInstances(t *testing.T, open func() driver.Driver) (a, b *Registry, clock *fakeClock) {
	clock = &fakeClock{t: time.Unix(1_800_000_000, 0)}
	opts := Options{DeleteEnabled: true}
	a, b = newRegistry(open, opts), newRegistry(open, opts)
	a.now, b.now = clock.now, clock.now
	return a, b, clock
}

// TestDeleteOnOneInstanceIsServedByNoneAfterStaleBound: what instance B
// deletes, instance A (which had just served it, and cached it) answers
// unknown once StaleBound has passed.
func TestDeleteOnOneInstanceIsServedByNoneAfterStaleBound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a, b, clock := twoInstances(t, open)
		img := newImage(t, "stale")
		img.push(t, a.Repository("fleet/app"), "1.0")
		layer := digest.FromBytes(img.layers[0])
		ra, rb := a.Repository("fleet/app"), b.Repository("fleet/app")
		if _, err := ra.GetManifest(ctx, img.digest.String()); err != nil {
			t.Fatal(err)
		}
		if _, err := ra.StatBlob(ctx, layer); err != nil {
			t.Fatal(err)
		}
		if err := rb.DeleteManifest(ctx, img.digest); err != nil {
			t.Fatal(err)
		}
		if err := rb.DeleteBlob(ctx, layer); err != nil {
			t.Fatal(err)
		}
		clock.advance(StaleBound)
		_, err := ra.GetManifest(ctx, img.digest.String())
		wantErr(t, err, ErrManifestUnknown)
		_, err = ra.StatBlob(ctx, layer)
		wantErr(t, err, ErrBlobUnknown)
		_, err = ra.OpenBlob(ctx, layer)
		wantErr(t, err, ErrBlobUnknown)
	})
}

// TestWritesConfirmLinksDeletedOnAnotherInstance: within StaleBound, an
// instance may still answer a read from its cache, but it never
// acknowledges a write on the strength of it: a manifest whose layer or
// child was unlinked through another instance is refused, and so is a tag
// pointing at a manifest deleted there.
func TestWritesConfirmLinksDeletedOnAnotherInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a, b, _ := twoInstances(t, open)
		ra, rb := a.Repository("fleet/app"), b.Repository("fleet/app")
		img := newImage(t, "confirm")
		img.push(t, ra, "1.0")
		child := newImage(t, "child")
		child.push(t, ra, child.digest.String())
		layer := digest.FromBytes(img.layers[1])
		// A caches the layer link, the child and the image.
		if _, err := ra.StatBlob(ctx, layer); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{img.digest.String(), child.digest.String()} {
			if _, err := ra.GetManifest(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := rb.DeleteBlob(ctx, layer); err != nil {
			t.Fatal(err)
		}
		if err := rb.DeleteManifest(ctx, child.digest); err != nil {
			t.Fatal(err)
		}
		if err := rb.DeleteManifest(ctx, img.digest); err != nil {
			t.Fatal(err)
		}

		_, err := ra.PutManifest(ctx, "again", img.mediaType, img.payload)
		wantErr(t, err, ErrManifestBlobUnknown)
		_, err = ra.PutManifest(ctx, "index", "application/vnd.oci.image.index.v1+json", indexOf(t, child))
		wantErr(t, err, ErrManifestBlobUnknown)
		wantErr(t, ra.Tag(ctx, "moved", img.digest), ErrManifestUnknown)
	})
}
