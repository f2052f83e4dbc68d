package storage

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// TestStatusDuringARequestHereDoesNotWait: a GET status on the instance
// whose own request is writing the session answers from the claim before
// it, reading the current claim once. The wait for a release
// (settleClaim) is for another instance's request, which may have
// answered its client already; this instance knows its own is still
// writing. Before, the GET re-read the live claim for a second (about ten
// reads) before answering.
func TestStatusDuringARequestHereDoesNotWait(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		var reads atomic.Int64
		a := New(claimReads{open(), func() { reads.Add(1) }}, Options{}, nil).Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		u, err := a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close(ctx)
		if _, err := u.Write(bytesOf(50, 'b')); err != nil {
			t.Fatal(err)
		}
		reads.Store(0)
		if size, err := a.StatUpload(ctx, id); err != nil || size != 100 {
			t.Fatalf("StatUpload while a request here writes: %d, %v, want 100", size, err)
		}
		// The current claim, then the one before it.
		if n := reads.Load(); n > 2 {
			t.Fatalf("StatUpload read claims %d times, want at most 2", n)
		}
	})
}
