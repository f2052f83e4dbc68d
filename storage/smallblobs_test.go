package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

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

func TestSmallBlobsEvictsLeastRecentlyUsed(t *testing.T) {
	c := newSmallBlobs(30)
	key := func(i int) digest.Digest { return digest.FromString(fmt.Sprint(i)) }
	for i := range 3 {
		c.add(key(i), make([]byte, 10))
	}
	c.get(key(0)) // 1 is now the oldest
	c.add(key(3), make([]byte, 10))
	for i, want := range []bool{true, false, true, true} {
		if _, ok := c.get(key(i)); ok != want {
			t.Errorf("blob %d kept = %v, want %v", i, ok, want)
		}
	}
	c.add(key(4), make([]byte, 31)) // larger than the whole cache
	if _, ok := c.get(key(4)); ok || c.size > 30 {
		t.Errorf("an oversize blob was kept (size %d)", c.size)
	}
}
