package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

func readBlob(t *testing.T, repo Repository, d digest.Digest) ([]byte, error) {
	t.Helper()
	b, err := repo.OpenBlob(context.Background(), d)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(b)
}

// TestSmallBlobServedFromMemoryOnceChecked: after one read the bytes come
// from memory (a later change to the stored file is not seen), but only
// while the repository links the blob.
func TestSmallBlobServedFromMemoryOnceChecked(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	reg := New(d, Options{DeleteEnabled: true}, nil)
	repo := reg.Repository("a/b")
	content := []byte(`{"architecture":"amd64","os":"linux"}`)
	dg := pushBlob(t, repo, content)
	if got, err := readBlob(t, repo, dg); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("first read = %q, %v", got, err)
	}
	if err := driver.PutContent(ctx, d, blobDataPath(dg), bytes.Repeat([]byte("x"), len(content))); err != nil {
		t.Fatal(err)
	}
	if got, err := readBlob(t, repo, dg); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("second read = %q, %v; want the checked bytes from memory", got, err)
	}
	if err := repo.DeleteBlob(ctx, dg); err != nil {
		t.Fatal(err)
	}
	if _, err := readBlob(t, repo, dg); !errors.Is(err, ErrBlobUnknown) {
		t.Fatalf("read after unlink: err = %v, want ErrBlobUnknown", err)
	}
}

// TestSmallBlobNotMatchingItsDigestIsNotServed: stored bytes that do not
// hash to the digest are refused, not served nor kept.
func TestSmallBlobNotMatchingItsDigestIsNotServed(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	repo := New(d, Options{}, nil).Repository("a/b")
	content := []byte("a small layer")
	dg := pushBlob(t, repo, content)
	if err := driver.PutContent(ctx, d, blobDataPath(dg), []byte("a SMALL layer")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := readBlob(t, repo, dg); err == nil {
			t.Fatalf("served %q for %s", got, dg)
		}
	}
}

// TestLargeManifestServedButNotKept: a stored manifest larger than
// manifestKeptMax (a tree another tool wrote) is served, checked, and read
// again each time rather than taking a sixteenth of the cache.
func TestLargeManifestServedButNotKept(t *testing.T) {
	ctx := context.Background()
	d := driver.Wrap(inmemory.New())
	reg := New(d, Options{}, nil)
	small := newImage(t, "small")
	small.push(t, reg.Repository("a/b"), "small")
	big := newImage(t, "big", func(m *ocispec.Manifest) {
		m.Annotations = map[string]string{"padding": strings.Repeat("x", manifestKeptMax)}
	})
	big.pushBlobs(t, reg.Repository("a/b"))
	for path, b := range map[string][]byte{
		blobDataPath(big.digest):            big.payload,
		revisionLinkPath("a/b", big.digest): []byte(big.digest),
	} {
		if err := driver.PutContent(ctx, d, path, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range []*image{small, big} {
		for range 2 {
			wantPayload(t, reg.Repository("a/b"), img.digest.String(), img.payload)
		}
	}
	if _, ok := reg.cache.content.get(big.digest); ok {
		t.Errorf("a %d-byte manifest was kept", len(big.payload))
	}
	if _, ok := reg.cache.content.get(small.digest); !ok {
		t.Error("a small manifest was not kept")
	}
}

// TestContentBytesBoundsTheContentCache: Options.ContentBytes
// (berth.storage.cache.contentbytes) is the budget of manifests and small
// blobs kept together; past it the least recently used go.
func TestContentBytesBoundsTheContentCache(t *testing.T) {
	ctx := context.Background()
	one, two := newImage(t, "one"), newImage(t, "two")
	perEntry := contentCost(one.payload)
	tests := []struct {
		name     string
		bytes    int64
		keptBoth bool
	}{
		{"default", 0, true},
		{"room for one manifest", perEntry + perEntry/2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := New(inmemory.New(), Options{ContentBytes: tt.bytes}, nil)
			repo := reg.Repository("a/b")
			for _, img := range []*image{one, two} {
				img.push(t, repo, img.digest.String())
				if _, err := repo.GetManifest(ctx, img.digest.String()); err != nil {
					t.Fatal(err)
				}
			}
			_, kept := reg.cache.content.get(one.digest)
			if _, ok := reg.cache.content.get(two.digest); !ok {
				t.Error("the manifest read last was not kept")
			}
			if kept != tt.keptBoth {
				t.Errorf("the first manifest kept = %v, want %v", kept, tt.keptBoth)
			}
			if max := reg.cache.content.max; tt.bytes > 0 && max != tt.bytes {
				t.Errorf("budget %d, want %d", max, tt.bytes)
			}
		})
	}
}
