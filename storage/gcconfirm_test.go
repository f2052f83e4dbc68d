package storage

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// leaseReads counts the listings of the gc lease a driver is asked for.
type leaseReads struct {
	driver.Driver
	n *atomic.Int32
}

func (l leaseReads) List(ctx context.Context, dir string) ([]string, error) {
	if strings.TrimSuffix(dir, "/") == gcLeaseDir {
		l.n.Add(1)
	}
	return l.Driver.List(ctx, dir)
}

// TestManifestPushReadsTheGCLeaseOnce: a manifest push confirms that no
// collection is deleting what it references by reading the collection
// lease once, not once per referenced blob (on S3 a listing and a probe
// each, 63 requests for a 20-layer image), and still refuses a manifest
// whose blob a collection deleted.
func TestManifestPushReadsTheGCLeaseOnce(t *testing.T) {
	ctx := context.Background()
	var n atomic.Int32
	d := leaseReads{Driver: inmemory.New(), n: &n}
	reg := New(d, Options{DeleteEnabled: true}, nil)
	repo := reg.Repository("app")
	img := newImage(t, "many", func(m *ocispec.Manifest) {
		for i := range 12 {
			l := bytesOf(100, byte(i))
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(l), Size: int64(len(l))})
		}
	})
	img.pushBlobs(t, repo)
	for i := range 12 {
		pushBlob(t, repo, bytesOf(100, byte(i)))
	}
	n.Store(0)
	if _, err := repo.PutManifest(ctx, "v1", img.mediaType, img.payload); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("the gc lease was listed %d times for a manifest of %d blobs, want once", got, len(img.manifest.Layers)+1)
	}

	// A blob deleted behind the registry's back (as a collection does)
	// still fails the next push that references it.
	gone := img.manifest.Layers[5].Digest
	if err := d.Delete(ctx, blobDataPath(gone)); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.PutManifest(ctx, "v2", img.mediaType, img.payload); !isErr(err, ErrManifestBlobUnknown) {
		t.Errorf("PutManifest referencing a deleted blob: %v, want ErrManifestBlobUnknown", err)
	}
}
