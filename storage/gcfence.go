package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// An online collection and the servers taking pushes coordinate through
// storage alone, since they are separate processes, possibly on separate
// hosts:
//
//	/docker/registry/v2/_berth/gc/lease                                the running collection: id, host, expiry
//	/docker/registry/v2/_berth/gc/tombstones/blobs/<alg>/<hex>         a blob it may delete
//	/docker/registry/v2/_berth/gc/tombstones/revisions/<name>/<alg>/<hex>  a revision it may delete
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
// The collection renews its lease and stops deleting, by its own clock,
// well before a writer would consider the lease expired.
const (
	gcRoot           = rootPath + "/_berth/gc"
	gcLeasePath      = gcRoot + "/lease"
	gcGenerationPath = gcRoot + "/generation"
	gcTombstonesRoot = gcRoot + "/tombstones"

	defaultLeaseTerm = 2 * time.Minute
	// defaultLeaseSettle is how long a collection waits before reading its
	// lease back: longer than another's read-then-write of the lease.
	defaultLeaseSettle = time.Second
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

func blobTombstonePath(d digest.Digest) string {
	return gcTombstonesRoot + "/blobs/" + digestDir(d)
}

func revisionTombstonePath(name string, d digest.Digest) string {
	return gcTombstonesRoot + "/revisions/" + name + "/" + digestDir(d)
}

// gcLease is the content of the lease file.
type gcLease struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	Expires time.Time `json:"expires"`
}

// fence is a running collection's hold on the lease.
type fence struct {
	drv   driver.Driver
	lease gcLease
	term  time.Duration

	mu         sync.Mutex
	validUntil time.Time // by this process's monotonic clock
	renewErr   error
	stop       chan struct{}
	done       chan struct{}
}

// acquireFence takes the collection lease, refusing while another live
// collection holds it. Two collections starting together both write, wait
// settle and read back: the one whose write was overwritten gives up.
func acquireFence(ctx context.Context, drv driver.Driver, term, settle time.Duration) (*fence, error) {
	if term <= 0 {
		term = defaultLeaseTerm
	}
	if settle <= 0 {
		settle = defaultLeaseSettle
	}
	if held, err := readLease(ctx, drv); err != nil {
		return nil, err
	} else if held != nil && time.Now().Before(held.Expires.Add(leaseSkew)) {
		return nil, fmt.Errorf("%w (id %s on %s, lease until %s)", ErrGCRunning, held.ID, held.Host, held.Expires.Format(time.RFC3339))
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	host, _ := os.Hostname()
	f := &fence{drv: drv, term: term, lease: gcLease{ID: hex.EncodeToString(id), Host: host}}
	if err := f.renew(ctx); err != nil {
		return nil, err
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	held, err := readLease(ctx, drv)
	if err != nil {
		return nil, err
	}
	if held == nil || held.ID != f.lease.ID {
		return nil, fmt.Errorf("%w (another collection took the lease as this one started)", ErrGCRunning)
	}
	// Tombstones of a collection that was killed are dead already; they
	// go so that they do not accumulate.
	if err := deleteIfExists(ctx, drv, gcTombstonesRoot); err != nil {
		return nil, err
	}
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go f.keepAlive()
	return f, nil
}

func readLease(ctx context.Context, drv driver.Driver) (*gcLease, error) {
	b, err := driver.GetContent(ctx, drv, gcLeasePath, 4096)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: gc: reading lease: %w", err)
	}
	var l gcLease
	if err := json.Unmarshal(b, &l); err != nil {
		// Unreadable means nobody can be relying on it.
		return nil, nil
	}
	return &l, nil
}

// renew writes the lease with a new expiry. The collection may act until
// the expiry less the skew, counted from before the write.
func (f *fence) renew(ctx context.Context) error {
	start := time.Now()
	l := f.lease
	l.Expires = start.Add(f.term).UTC()
	b, _ := json.Marshal(l)
	if err := driver.PutContent(ctx, f.drv, gcLeasePath, b); err != nil {
		return fmt.Errorf("storage: gc: writing lease: %w", err)
	}
	f.mu.Lock()
	f.validUntil = start.Add(f.term - leaseSkew)
	f.mu.Unlock()
	return nil
}

func (f *fence) keepAlive() {
	defer close(f.done)
	t := time.NewTicker(f.term / 4)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), f.term/4)
		err := f.renew(ctx)
		cancel()
		if err != nil {
			f.mu.Lock()
			f.renewErr = err
			f.mu.Unlock()
		}
	}
}

// check tells whether the collection may still delete.
func (f *fence) check() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Now().Before(f.validUntil) {
		return nil
	}
	if f.renewErr != nil {
		return fmt.Errorf("storage: gc: lease lost, stopping: %w", f.renewErr)
	}
	return errors.New("storage: gc: lease lost, stopping")
}

// tombstone marks p (a tombstone path) as this collection's to delete.
func (f *fence) tombstone(ctx context.Context, p string) error {
	if err := driver.PutContent(ctx, f.drv, p, []byte(f.lease.ID)); err != nil {
		return fmt.Errorf("storage: gc: writing tombstone: %w", err)
	}
	return nil
}

// release ends the collection: tombstones go first, then the lease. When
// it deleted anything, the generation is rewritten so that servers drop
// what they cached of the deleted content.
func (f *fence) release(ctx context.Context, deleted bool) error {
	close(f.stop)
	<-f.done
	var errs []error
	if deleted {
		gen := fmt.Sprintf("%s %s\n", f.lease.ID, time.Now().UTC().Format(time.RFC3339Nano))
		if err := driver.PutContent(ctx, f.drv, gcGenerationPath, []byte(gen)); err != nil {
			errs = append(errs, fmt.Errorf("storage: gc: writing generation: %w", err))
		}
	}
	errs = append(errs, deleteIfExists(ctx, f.drv, gcTombstonesRoot))
	errs = append(errs, deleteIfExists(ctx, f.drv, gcLeasePath))
	return errors.Join(errs...)
}

// tombstoneLive tells whether the tombstone at p belongs to a collection
// whose lease has not expired.
func (r *Registry) tombstoneLive(ctx context.Context, p string) (bool, error) {
	id, err := driver.GetContent(ctx, r.driver, p, 256)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrapDriverErr("checking tombstone", err)
	}
	l, err := readLease(ctx, r.driver)
	if err != nil {
		return false, wrapDriverErr("checking tombstone", err)
	}
	return l != nil && l.ID == string(id) && time.Now().Before(l.Expires.Add(leaseSkew)), nil
}

// confirmLinked is what a writer calls after writing the link that makes
// the content ds referenced: it fails with ErrCollecting when a running
// collection may delete one of them, and with notFound when one is gone
// already. The store is asked, not the cache.
func (r *Registry) confirmLinked(ctx context.Context, ds []digest.Digest, notFound error) error {
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, d := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = r.confirmBlob(ctx, d, notFound)
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

func (r *Registry) confirmBlob(ctx context.Context, d digest.Digest, notFound error) error {
	// The tombstone first: a collection deletes the data before it
	// removes its tombstones, so a writer that finds no tombstone and
	// then the data has the data for good.
	live, err := r.tombstoneLive(ctx, blobTombstonePath(d))
	if err != nil {
		return err
	}
	if live {
		return &Error{Err: ErrCollecting, Digest: d, Detail: "blob " + string(d)}
	}
	if _, err := r.driver.Stat(ctx, blobDataPath(d)); err != nil {
		if isNotFound(err) {
			r.forgetBlob(d)
			r.cache.manifests.remove(d)
			return &Error{Err: notFound, Digest: d, Detail: string(d) + " was deleted"}
		}
		return wrapDriverErr("confirming blob", err)
	}
	return nil
}
