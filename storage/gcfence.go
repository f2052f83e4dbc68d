package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// An online collection and the servers taking pushes coordinate through
// storage alone, since they are separate processes, possibly on separate
// hosts:
//
//	/docker/registry/v2/_berth/gc/leases/<n>                           the collections' claims (lease.go): id, host, expiry
//	/docker/registry/v2/_berth/gc/tombstones/<id>/blobs/<alg>/<hex>         a blob collection <id> may delete
//	/docker/registry/v2/_berth/gc/tombstones/<id>/revisions/<name>/<alg>/<hex>  a revision it may delete
//	/docker/registry/v2/_berth/gc/generation                           rewritten after every collection that deleted
//
// Distribution walks only blobs/ and repositories/, so it never sees these.
//
// The protocol closes the window between the collection's last listing and
// its deletes. Each side writes first and checks second:
//   - the collection writes a tombstone for everything it may delete, then
//     lists the repositories again, keeping whatever was linked since;
//   - a writer writes its link (layer, revision), then checks that no live
//     tombstone covers what it linked and that the data is still there.
//
// Whichever of the two comes second sees the other's write: either the
// listing finds the new link and the collection keeps the blob, or the
// writer finds the tombstone (or the data already gone) and refuses the
// request, so no manifest ever points at deleted data.
//
// A tombstone is live only while the lease naming its collection is: a
// collection that was killed leaves tombstones that writers then ignore.
// Each collection writes and removes tombstones only below its own id, so
// one whose lease lapsed can neither overwrite nor remove those of the
// collection that took over.
// The collection renews its lease and stops deleting, by its own clock,
// well before a writer would consider the lease expired; a lease that
// lapsed is never renewed, so a collection that stalled past it (a
// frozen process, a lost network) deletes nothing when it wakes, and a
// second collection may take over.
const (
	gcRoot           = rootPath + "/_berth/gc"
	gcLeaseDir       = gcRoot + "/leases"
	gcGenerationPath = gcRoot + "/generation"
	gcTombstonesRoot = gcRoot + "/tombstones"

	defaultLeaseTerm = 2 * time.Minute
	// leaseSkew is the clock difference between hosts the lease tolerates:
	// the collection stops this long before its lease expires, writers
	// honour it this long after.
	leaseSkew = 30 * time.Second
)

// ErrCollecting is returned to a writer whose content a running garbage
// collection is about to delete: the request may be retried once the
// collection is over.
var ErrCollecting = errors.New("content is being garbage-collected, retry later")

// ErrGCRunning is returned when another collection holds the lease.
var ErrGCRunning = errors.New("storage: gc: another garbage collection is running")

// blobTombstonePath and revisionTombstonePath name a tombstone within its
// collection's directory (tombstonePath).
func blobTombstonePath(d digest.Digest) string {
	return "blobs/" + digestDir(d)
}

func revisionTombstonePath(name string, d digest.Digest) string {
	return "revisions/" + name + "/" + digestDir(d)
}

// tombstonePath is where the collection id keeps the tombstone key.
func tombstonePath(id, key string) string {
	return gcTombstonesRoot + "/" + id + "/" + key
}

// fence is a running collection's hold on the gc lease (lease.go): the
// lease's claims live under gcLeaseDir, durably, and the collection's id
// is its claim's owner, which its tombstones name.
type fence struct {
	drv   driver.Driver
	lease *lease
}

// acquireFence takes the collection lease, refusing while another live
// collection holds it. Of two collections starting together, exactly one
// creates the next claim.
func acquireFence(ctx context.Context, drv driver.Driver, term, skew time.Duration) (*fence, error) {
	if term <= 0 {
		term = defaultLeaseTerm
	}
	l, _, err := acquireLease(ctx, drv, gcLeaseDir, term, skew, true)
	if err != nil {
		var he *heldError
		if errors.As(err, &he) {
			return nil, fmt.Errorf("%w (id %s on %s, lease until %s)", ErrGCRunning, he.rec.Owner, he.rec.Host, he.rec.Expires.Format(time.RFC3339))
		}
		return nil, fmt.Errorf("storage: gc: taking the lease: %w", err)
	}
	f := &fence{drv: drv, lease: l}
	// Claims of earlier collections are done with; tombstones of one
	// that was killed are dead already. Both go so as not to accumulate.
	if err := f.pruneClaims(ctx); err != nil {
		l.abandon()
		return nil, err
	}
	if err := deleteIfExists(ctx, drv, gcTombstonesRoot); err != nil {
		l.abandon()
		return nil, err
	}
	l.keepAlive(ctx, term/4)
	return f, nil
}

// pruneClaims deletes the claims before this collection's own. Numbers
// are never reused: the current claim, the highest, stays.
func (f *fence) pruneClaims(ctx context.Context) error {
	for g := f.lease.gen - 1; g > 0; g-- {
		err := f.drv.Delete(ctx, leaseClaimPath(gcLeaseDir, g))
		if isNotFound(err) {
			return nil // pruned by an earlier collection from here down
		}
		if err != nil {
			return fmt.Errorf("storage: gc: pruning old leases: %w", err)
		}
	}
	return nil
}

func (f *fence) id() string { return f.lease.rec.Owner }

// check tells whether the collection may still delete. It stops a skew
// before its lease's end by its own clock: a deletion is what a lapsed
// lease must never let through, and the margin covers the time one
// takes to land. A lapsed lease is never renewed, so once check fails it
// keeps failing.
func (f *fence) check() error {
	if err := f.lease.valid(); err != nil {
		return fmt.Errorf("storage: gc: lease lost, stopping: %w", err)
	}
	f.lease.mu.Lock()
	left := time.Until(f.lease.validUntil)
	f.lease.mu.Unlock()
	if left <= f.lease.skew {
		return fmt.Errorf("storage: gc: lease lost, stopping: %w: less than %s left", errLeaseLost, f.lease.skew)
	}
	return nil
}

// tombstone marks key (a tombstone path) as this collection's to delete.
func (f *fence) tombstone(ctx context.Context, key string) error {
	if err := driver.PutContent(ctx, f.drv, tombstonePath(f.id(), key), []byte(f.id())); err != nil {
		return fmt.Errorf("storage: gc: writing tombstone: %w", err)
	}
	return nil
}

// release ends the collection: tombstones go first, then the lease. When
// it deleted anything, the generation is rewritten so that servers drop
// what they cached of the deleted content.
func (f *fence) release(ctx context.Context, deleted bool) error {
	f.lease.stopKeepAlive()
	var errs []error
	if deleted {
		gen := fmt.Sprintf("%s %s\n", f.id(), time.Now().UTC().Format(time.RFC3339Nano))
		if err := driver.PutContent(ctx, f.drv, gcGenerationPath, []byte(gen)); err != nil {
			errs = append(errs, fmt.Errorf("storage: gc: writing generation: %w", err))
		}
	}
	errs = append(errs, deleteIfExists(ctx, f.drv, gcTombstonesRoot+"/"+f.id()))
	if err := f.lease.release(ctx, 0); err != nil && !errors.Is(err, errLeaseLost) {
		errs = append(errs, fmt.Errorf("storage: gc: releasing the lease: %w", err))
	}
	return errors.Join(errs...)
}

// tombstoneLive tells whether the collection whose lease is live has the
// tombstone key.
func (r *Registry) tombstoneLive(ctx context.Context, key string) (bool, error) {
	id, err := r.liveCollection(ctx)
	if err != nil {
		return false, err
	}
	return r.tombstoned(ctx, id, key)
}

// liveCollection is the id of the collection whose lease is live, "" when
// none is. A writer reads it once, after writing its links, for all the
// content those links reference: a collection that began before the links
// were written holds a claim this read sees, and one that begins after it
// finds the links when it marks. Reading it again for each blob (a listing
// and a probe, three requests on S3) told nothing more: the 21 blobs of a
// 20-layer manifest cost 63 requests to learn that no collection ran.
func (r *Registry) liveCollection(ctx context.Context) (string, error) {
	_, _, cur, err := currentClaim(ctx, r.driver, gcLeaseDir)
	if err != nil {
		return "", wrapDriverErr("checking tombstone", err)
	}
	if cur == nil || cur.Owner == "" || !cur.live(time.Now(), r.leaseSkew()) {
		return "", nil
	}
	return cur.Owner, nil
}

// tombstoned tells whether collection id ("" for none) has the tombstone
// key.
func (r *Registry) tombstoned(ctx context.Context, id, key string) (bool, error) {
	if id == "" {
		return false, nil
	}
	_, err := r.driver.Stat(ctx, tombstonePath(id, key))
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrapDriverErr("checking tombstone", err)
	}
	return true, nil
}

// confirmLinked is what a writer calls after writing the link that makes
// the content ds referenced: it fails with ErrCollecting when a running
// collection may delete one of them, and with notFound when one is gone
// already. The store is asked, not the cache.
func (r *Registry) confirmLinked(ctx context.Context, ds []digest.Digest, notFound error) error {
	id, err := r.liveCollection(ctx)
	if err != nil {
		return err
	}
	return r.confirmUnder(ctx, id, ds, notFound)
}

// confirmUnder is confirmLinked with the live collection read already.
func (r *Registry) confirmUnder(ctx context.Context, id string, ds []digest.Digest, notFound error) error {
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, d := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = r.confirmBlob(ctx, id, d, notFound)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// collected tells whether err, from confirmLinked, says the content is
// being or was garbage-collected, rather than that the backend failed.
func collected(err, notFound error) bool {
	return errors.Is(err, ErrCollecting) || errors.Is(err, notFound)
}

func (r *Registry) confirmBlob(ctx context.Context, id string, d digest.Digest, notFound error) error {
	// The tombstone first: a collection deletes the data before it
	// removes its tombstones, so a writer that finds no tombstone and
	// then the data has the data for good.
	live, err := r.tombstoned(ctx, id, blobTombstonePath(d))
	if err != nil {
		return err
	}
	if live {
		return &Error{Err: ErrCollecting, Digest: d, Detail: "blob " + string(d)}
	}
	if _, err := r.driver.Stat(ctx, blobDataPath(d)); err != nil {
		if isNotFound(err) {
			r.forgetBlob(d)
			r.cache.content.remove(d)
			return &Error{Err: notFound, Digest: d, Detail: string(d) + " was deleted"}
		}
		return wrapDriverErr("confirming blob", err)
	}
	return nil
}
