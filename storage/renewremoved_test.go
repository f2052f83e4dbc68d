package storage

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// heldRenewal holds the first claim write after armed is set (a renewal)
// until gate is closed, telling arrived; deleted is closed once a path
// under an upload other than a claim was deleted (the session removed).
type heldRenewal struct {
	driver.Driver
	armed   atomic.Bool
	arrived chan struct{}
	gate    chan struct{}
	once    sync.Once
	deleted chan struct{}
}

func (h *heldRenewal) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, h.Driver, p, b)
}

func (h *heldRenewal) PutContent(ctx context.Context, p string, b []byte) error {
	if isClaim(p) && h.armed.CompareAndSwap(true, false) {
		close(h.arrived)
		<-h.gate
	}
	return driver.PutContent(ctx, h.Driver, p, b)
}

func (h *heldRenewal) Delete(ctx context.Context, p string) error {
	err := h.Driver.Delete(ctx, p)
	if strings.Contains(p, "/_uploads/") && !isClaim(p) {
		h.once.Do(func() { close(h.deleted) })
	}
	return err
}

// TestRenewalDoesNotOutliveTheCommitThatRemovesTheSession: a renewal of
// the committing (or cancelling) request's claim is on its way when the
// request removes the session. It must not land after the removal: the claim would be back,
// in a session that is gone, for purging to find. Before, the renewals
// stopped only once the commit returned (lease.abandon, deferred), after
// the removal, and the renewal brought claim 2 back.
func TestRenewalDoesNotOutliveTheCommitThatRemovesTheSession(t *testing.T) {
	for _, end := range []string{"commit", "cancel"} {
		t.Run(end, func(t *testing.T) { renewalAsTheSessionIsRemoved(t, end) })
	}
}

func renewalAsTheSessionIsRemoved(t *testing.T, end string) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		drv := &heldRenewal{Driver: open(), arrived: make(chan struct{}), gate: make(chan struct{}), deleted: make(chan struct{})}
		reg := New(drv, Options{}, nil)
		a := reg.Repository("app")
		content := bytesOf(100, 'a')
		id := startedUpload(t, a, content)
		u, err := a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		drv.armed.Store(true)
		u.(*upload).lease.renewals.timer.Reset(0) // the renewal is due
		<-drv.arrived
		committed := make(chan error)
		go func() {
			if end == "cancel" {
				committed <- u.Cancel(ctx)
				return
			}
			_, err := u.Commit(ctx, digest.FromBytes(content))
			committed <- err
		}()
		select {
		case <-drv.deleted:
		case <-time.After(200 * time.Millisecond): // a commit that waits for the renewal first
		}
		close(drv.gate)
		if err := <-committed; err != nil {
			t.Fatalf("%s: %v", end, err)
		}
		reg.Drain(ctx)
		noSessionLeft(t, open())
	})
}
