package storage

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// failStartOnce fails the next read of an upload's start time once armed.
type failStartOnce struct {
	*heldReleases
	armed atomic.Bool
}

func (f *failStartOnce) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	if strings.HasSuffix(p, "/startedat") && f.armed.CompareAndSwap(true, false) {
		return nil, errors.New("the store failed")
	}
	return f.heldReleases.Reader(ctx, p, off)
}

// TestFailedRequestKeepsTheReleaseInFlightToWaitFor: A's PATCH is
// answered and its release (claim 2) is slow. A's next request on the
// session fails (its read of the start time fails): it had taken the
// hint that carried the release in flight. A DELETE on A then removes the
// session; the slow release must not land after that. Before, the failed
// request dropped the hint, the DELETE had nothing to wait for, and claim
// 2 came back after the session was removed.
func TestFailedRequestKeepsTheReleaseInFlightToWaitFor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		gate := make(chan struct{})
		drv := &failStartOnce{heldReleases: &heldReleases{Driver: open(), suffix: "/000000000002", open: gate}}
		reg := New(drv, Options{}, nil)
		reg.keepFor = 0 // each request releases its claim (uploadkeep.go)
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		drv.armed.Store(true)
		if _, err := a.ResumeUpload(ctx, id); err == nil {
			t.Fatal("ResumeUpload succeeded with its start time unreadable")
		}
		cancelled := make(chan error, 1)
		go func() {
			u, err := a.ResumeUpload(ctx, id)
			if err == nil {
				err = u.Cancel(ctx)
			}
			cancelled <- err
		}()
		// The DELETE waits for the release (it would bring the claim
		// back); the release goes once the DELETE is done or has waited
		// a while (this bounds nothing the test checks).
		var err error
		select {
		case err = <-cancelled:
			close(gate)
		case <-time.After(300 * time.Millisecond):
			close(gate)
			err = <-cancelled
		}
		if err != nil {
			t.Fatalf("DELETE on A: %v", err)
		}
		reg.Drain(ctx)
		noSessionLeft(t, open())
	})
}

// TestFailedRequestReleasesAfterTheReleaseInFlight: A's release of claim
// 2 is slow; A's next request takes claim 3 and fails (its read of the
// start time fails), releasing claim 3 at once. B finds claim 3 released,
// commits and removes the session. Claim 2's release must not land after
// that: before, claim 3's release went without waiting for it, and the
// removed session's claim 2 came back.
func TestFailedRequestReleasesAfterTheReleaseInFlight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		gate := make(chan struct{})
		var once sync.Once
		release := func() { once.Do(func() { close(gate) }) }
		defer release()
		drv := &failStartOnce{heldReleases: &heldReleases{Driver: open(), suffix: "/000000000002", open: gate}}
		regA := New(drv, Options{}, nil)
		regA.keepFor = 0 // each request releases its claim (uploadkeep.go)
		a := regA.Repository("app")
		b := New(&countedReads{Driver: open(), suffix: "/000000000003", read: func(n int) {
			if n >= 4 {
				release()
			}
		}}, Options{}, nil).Repository("app")
		content := append(bytesOf(100, 'a'), bytesOf(50, 'b')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:])
		drv.armed.Store(true)
		failed := make(chan error, 1)
		go func() {
			_, err := a.ResumeUpload(ctx, id)
			failed <- err
		}()
		// The failed request either released claim 3 at once, or waits
		// for claim 2's release to go first (this bounds nothing the
		// test checks).
		select {
		case err := <-failed:
			failed <- err
		case <-time.After(300 * time.Millisecond):
		}
		u, err := b.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("ResumeUpload on B: %v", err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatalf("Commit on B: %v", err)
		}
		release()
		if err := <-failed; err == nil {
			t.Fatal("ResumeUpload on A succeeded with its start time unreadable")
		}
		regA.Drain(ctx)
		noSessionLeft(t, open())
	})
}
