package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Releases written in the background (lease.releaseLater) racing what
// another instance does with the session.

// countedReads calls read with how many times it has read the claim at a
// path ending in suffix live (not released).
type countedReads struct {
	driver.Driver
	suffix string
	mu     sync.Mutex
	n      int
	read   func(n int)
}

func (c *countedReads) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, c.Driver, p, b)
}

func (c *countedReads) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	rc, err := c.Driver.Reader(ctx, p, off)
	if err != nil || !isClaim(p) || !strings.HasSuffix(p, c.suffix) {
		return rc, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte(`"released":true`)) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	c.read(n)
	return io.NopCloser(bytes.NewReader(b)), nil
}

// TestLateReleaseOfAnEarlierClaimDoesNotOutliveACommitElsewhere: A's
// first PATCH's release (claim 2) is slow, its second PATCH's (claim 3)
// is not. B resumes the session, commits it and removes it; only then, or
// once B is seen waiting for claim 3 (it read it live a few times), does
// claim 2's release go. It must not land after the removal: before, A wrote claim
// 3's release without waiting for claim 2's, B found claim 3 released
// and committed, and claim 2's late release brought the committed
// session's lease directory back.
func TestLateReleaseOfAnEarlierClaimDoesNotOutliveACommitElsewhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		gate := make(chan struct{})
		var once sync.Once
		release := func() { once.Do(func() { close(gate) }) }
		regA := New(&heldReleases{Driver: open(), suffix: "/000000000002", open: gate}, Options{}, nil)
		regA.keepFor = 0 // each request releases its claim (uploadkeep.go)
		a := regA.Repository("app")
		b := New(&countedReads{Driver: open(), suffix: "/000000000003", read: func(n int) {
			if n >= 4 {
				release()
			}
		}}, Options{}, nil).Repository("app")
		content := append(append(bytesOf(100, 'a'), bytesOf(50, 'b')...), bytesOf(10, 'c')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:150])
		patch(t, a, id, content[150:])
		u, err := b.ResumeUpload(ctx, id)
		if err != nil {
			release()
			t.Fatalf("ResumeUpload on B: %v", err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
			release()
			t.Fatalf("Commit on B: %v", err)
		}
		release()
		regA.Drain(ctx)
		noSessionLeft(t, open())
	})
}

// failedClaim fails the rewrites of one upload claim (those of path
// suffix); every other write goes through.
type failedClaim struct {
	driver.Driver
	suffix string
}

func (f failedClaim) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, f.Driver, p, b)
}

func (f failedClaim) PutContent(ctx context.Context, p string, b []byte) error {
	if isClaim(p) && strings.HasSuffix(p, f.suffix) {
		return errors.New("the store failed")
	}
	return driver.PutContent(ctx, f.Driver, p, b)
}

// TestNextRequestHereOutlivesAFailedRelease: A's first PATCH's release
// (claim 2) fails after A's next PATCH took the hint and claim 3. Claim 3
// is released all the same, after claim 2's attempt, and B goes on at
// once from the size A acknowledged last, with its digest.
func TestNextRequestHereOutlivesAFailedRelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		regA := New(failedClaim{Driver: open(), suffix: "/000000000002"}, Options{}, nil)
		regA.keepFor = 0 // each request releases its claim (uploadkeep.go)
		a := regA.Repository("app")
		b := New(open(), Options{}, nil).Repository("app")
		content := append(append(bytesOf(100, 'a'), bytesOf(50, 'b')...), bytesOf(10, 'c')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:150])
		patch(t, a, id, content[150:])
		regA.Drain(ctx)
		if size, err := b.StatUpload(ctx, id); err != nil || size != 160 {
			t.Fatalf("StatUpload on B: %d, %v, want 160", size, err)
		}
		commitSession(t, b, id, content)
		regA.Drain(ctx)
		noSessionLeft(t, open())
	})
}
