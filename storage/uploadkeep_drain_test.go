package storage

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// TestDrainWaitsForAKeptClaimReleasingAsItRuns: the keep of a claim ends
// (its timer fires) just as the server drains. Drain must not return
// before that release is written: the process exits then, and the claim
// would block the session elsewhere until it lapsed. The release is held
// at the point where it stops the lease's renewals. Before, the claim was
// forgotten (Registry.kept) before its release was counted, and Drain,
// finding neither, returned with claim 2 unreleased.
func TestDrainWaitsForAKeptClaimReleasingAsItRuns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		reg := New(open(), Options{}, nil)
		reg.keepFor = 10 * time.Second
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		v, ok := reg.kept.Load("app/" + id)
		if !ok {
			t.Fatal("the PATCH did not keep its claim")
		}
		k := v.(*keptClaim)
		k.timer.Stop()
		// A renewal "under way" that the release waits for.
		stall := &renewals{timer: time.NewTimer(time.Hour)}
		stall.mu.Lock()
		k.l.renewals = stall
		expired := make(chan struct{})
		go func() {
			defer close(expired)
			k.expire()
		}()
		for k.mu.TryLock() {
			k.mu.Unlock()
			runtime.Gosched()
		}
		time.Sleep(10 * time.Millisecond) // a lull: the release reaches the stall
		drained := make(chan *leaseRecord)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			reg.Drain(ctx)
			b, err := driver.GetContent(ctx, open(), leaseClaimPath(uploadLeaseDir("app", id), 2), 4096)
			if err != nil {
				drained <- nil
				return
			}
			drained <- parseClaim(b)
		}()
		time.Sleep(50 * time.Millisecond) // a lull: a Drain that does not wait returns
		stall.mu.Unlock()
		rec := <-drained
		<-expired
		if rec == nil || !rec.Released || rec.Size != 150 {
			t.Fatalf("claim 2 once Drain returned: %+v, want released at 150 bytes", rec)
		}
	})
}
