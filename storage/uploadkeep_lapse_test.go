package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// A kept claim whose keep outlived its term: the process stalled (a
// stopped or starved process) and its timer fired late or not yet when the
// client's next request came.

// stallKeep stops the keep of the upload id's kept claim on reg, as a
// stalled process would not end it, and waits until the claim lapsed for
// every instance (term plus skew).
func stallKeep(t *testing.T, reg *Registry, id string, term, skew time.Duration) {
	t.Helper()
	v, ok := reg.kept.Load("app/" + id)
	if !ok {
		t.Fatal("A did not keep the claim of its PATCH")
	}
	v.(*keptClaim).timer.Stop()
	time.Sleep(term + skew + 100*time.Millisecond)
}

// TestLapsedKeptClaimIsNotTakenOverASessionCommittedElsewhere: A keeps
// its claim, stalls past its term; B takes the session over and commits
// it. A's next request must answer that the session is unknown, and leave
// nothing of it behind. Before, it took the lapsed claim (no start time
// read, no claim made), opened a new write where the session was and
// answered as if the session existed.
func TestLapsedKeptClaimIsNotTakenOverASessionCommittedElsewhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 100 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		regA := New(open(), opts, nil)
		a, b := regA.Repository("app"), newRegistry(open, opts).Repository("app")
		content := append(bytesOf(100, 'a'), bytesOf(50, 'b')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:])
		stallKeep(t, regA, id, term, skew)
		u, err := b.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("ResumeUpload on B: %v", err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatalf("Commit on B: %v", err)
		}
		u, err = a.ResumeUpload(ctx, id)
		if err == nil {
			_ = u.Close(ctx)
		}
		if !errors.Is(err, ErrUploadUnknown) {
			t.Fatalf("ResumeUpload on A after B committed: %v, want ErrUploadUnknown", err)
		}
		regA.Drain(ctx)
		noSessionLeft(t, open())
	})
}

// TestLapsedKeptClaimIsNotTakenOverAnotherInstancesRequest: A keeps its
// claim and stalls past its term; B takes the session over and appends to
// it. A's next request must go on from what B left. Before, it took the
// lapsed claim and failed its first write (its lease was lost), where a
// claim after B's would have served it.
func TestLapsedKeptClaimIsNotTakenOverAnotherInstancesRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 100 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		regA := New(open(), opts, nil)
		a, b := regA.Repository("app"), newRegistry(open, opts).Repository("app")
		content := append(append(append(bytesOf(100, 'a'), bytesOf(50, 'b')...), bytesOf(10, 'c')...), bytesOf(5, 'd')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:150])
		stallKeep(t, regA, id, term, skew)
		patch(t, b, id, content[150:160])
		u, err := a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("ResumeUpload on A after B's PATCH: %v", err)
		}
		if u.Size() != 160 {
			t.Fatalf("A resumed at %d bytes, want 160", u.Size())
		}
		if _, err := u.Write(content[160:]); err != nil {
			t.Fatalf("Write on A after B's PATCH: %v", err)
		}
		d := digest.FromBytes(content)
		if _, err := u.Commit(ctx, d); err != nil {
			t.Fatalf("Commit on A: %v", err)
		}
		regA.Drain(ctx)
		noSessionLeft(t, open())
	})
}
