package storage

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestStaleCollectionLeavesTheLiveOnesTombstones: a collection whose
// lease lapsed (cut off from its lease, then back) must not touch the
// tombstones of the collection that took over: neither overwrite one
// with its own dead name, nor remove them when it ends. Either would let
// a writer link a blob the live collection is about to delete.
func TestStaleCollectionLeavesTheLiveOnesTombstones(t *testing.T) {
	for _, stale := range []struct {
		name string
		act  func(ctx context.Context, f *fence, p string) error
	}{
		{"tombstones the same blob", func(ctx context.Context, f *fence, p string) error { return f.tombstone(ctx, p) }},
		{"ends", func(ctx context.Context, f *fence, p string) error { return f.release(ctx, false) }},
	} {
		t.Run(stale.name, func(t *testing.T) {
			ctx := context.Background()
			const term, skew = time.Second, 100 * time.Millisecond
			drv := openFilesystem(t, t.TempDir())
			var cut atomic.Bool
			first, err := acquireFence(ctx, cutOff{drv, &cut}, term, skew)
			if err != nil {
				t.Fatal(err)
			}
			cut.Store(true)
			time.Sleep(term + 2*skew)
			second, err := acquireFence(ctx, drv, time.Hour, skew)
			if err != nil {
				t.Fatalf("a second collection past the first's lease: %v", err)
			}
			defer second.release(ctx, false)
			p := blobTombstonePath(digest.FromString("doomed"))
			if err := second.tombstone(ctx, p); err != nil {
				t.Fatal(err)
			}
			writer := New(drv, Options{LeaseSkew: skew}, nil)
			if live, err := writer.tombstoneLive(ctx, p); err != nil || !live {
				t.Fatalf("the live collection's tombstone: live %v, %v", live, err)
			}
			cut.Store(false)
			_ = stale.act(ctx, first, p)
			if live, err := writer.tombstoneLive(ctx, p); err != nil || !live {
				t.Fatalf("after the stale collection %s, the live collection's tombstone: live %v, %v; want live", stale.name, live, err)
			}
		})
	}
}
