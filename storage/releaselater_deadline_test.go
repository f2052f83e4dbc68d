package storage

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// releaseDeadlines records, for each rewrite of an upload claim, the
// deadline it was sent with and the expiry the claim holds.
type releaseDeadlines struct {
	driver.Driver
	mu  sync.Mutex
	got []struct {
		deadline time.Time
		ok       bool
		expires  time.Time
	}
}

func (r *releaseDeadlines) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, r.Driver, p, b)
}

func (r *releaseDeadlines) PutContent(ctx context.Context, p string, b []byte) error {
	if isClaim(p) {
		var rec leaseRecord
		_ = json.Unmarshal(b, &rec)
		dl, ok := ctx.Deadline()
		r.mu.Lock()
		r.got = append(r.got, struct {
			deadline time.Time
			ok       bool
			expires  time.Time
		}{dl, ok, rec.Expires})
		r.mu.Unlock()
	}
	return driver.PutContent(ctx, r.Driver, p, b)
}

// TestReleaseIsNotWrittenPastItsClaim: a release (or a checkpoint) written
// in the background is given up when the claim it releases lapses. Past that,
// another instance may have taken the session over and removed it, and a
// release landing then would bring its claim back. Before, the release
// had the driver's write timeout (minutes) whatever the claim's term.
func TestReleaseIsNotWrittenPastItsClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		drv := &releaseDeadlines{Driver: open()}
		reg := New(drv, Options{UploadLease: 2 * time.Second}, nil)
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		// The checkpoint is written once the next request did not come
		// for checkpointDelay; the release would supersede it.
		if checkpoint := reg.lastRelease("app", id); checkpoint != nil {
			<-checkpoint
		}
		reg.Drain(ctx)
		drv.mu.Lock()
		defer drv.mu.Unlock()
		// The size the PATCH left, written into the claim it kept
		// (uploadkeep.go), then the release at the end of the keep.
		if len(drv.got) != 2 {
			t.Fatalf("%d claim rewrites, want the checkpoint and the release", len(drv.got))
		}
		for _, g := range drv.got {
			if !g.ok || g.deadline.After(g.expires) {
				t.Fatalf("claim rewrite sent with deadline %v (set %v), after its claim's expiry %v", g.deadline, g.ok, g.expires)
			}
		}
	})
}
