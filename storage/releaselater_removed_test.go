package storage

import (
	"context"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// TestSessionRemovedWhileWaitingForItsRelease: B's PATCH finds the claim
// of a request on A live and waits for its release (settleClaim); A
// commits meanwhile and removes the session. B must answer that the
// upload is unknown, and leave nothing behind. Before, B read the removed
// claim as free, claimed the next number in the removed session and
// wrote its bytes there: a 202 for a session already committed, and a
// lease and data nobody removes.
func TestSessionRemovedWhileWaitingForItsRelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a := New(open(), Options{}, nil).Repository("app")
		content := append(bytesOf(100, 'a'), bytesOf(50, 'b')...)
		id := startedUpload(t, a, content[:100])
		ua, err := a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ua.Write(content[100:]); err != nil {
			t.Fatal(err)
		}
		seen, committed := make(chan struct{}), make(chan struct{})
		var once sync.Once
		b := New(claimReads{open(), func() {
			once.Do(func() {
				close(seen)
				<-committed
			})
		}}, Options{}, nil).Repository("app")
		res := make(chan error, 1)
		go func() {
			u, err := b.ResumeUpload(ctx, id)
			if err == nil {
				if _, err = u.Write(bytesOf(10, 'c')); err == nil {
					err = u.Close(ctx)
				}
				if err == nil {
					err = errUnexpected202
				}
			}
			res <- err
		}()
		<-seen
		if _, err := ua.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatalf("Commit on A: %v", err)
		}
		close(committed)
		wantErr(t, <-res, ErrUploadUnknown)
		noSessionLeft(t, open())
	})
}

var errUnexpected202 = &Error{Err: ErrUploadInvalid, Detail: "B's PATCH was accepted on a committed session"}
