package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"

	_ "crypto/sha256" // registers the algorithms go-digest hashes with
	_ "crypto/sha512"
)

// Registry is the content of every repository on one driver. It is safe
// for concurrent use; several Registries (in several processes) may share
// one backend, as everything but the cache of immutable content lives in it.
type Registry struct {
	driver driver.Driver
	opts   Options
	log    *slog.Logger
	cache  *cache
	gen    genWatch
	// sessions are the upload sessions requests of this instance are
	// using (each with the number of its claim, 0 until it has one), and
	// hints the lease claims it released on them (uploads.go).
	sessions  sync.Map
	hints     sync.Map
	hintCount atomic.Int64
	parked    atomic.Int64   // hints holding a closed writer (uploadmemory.go)
	releases  sync.WaitGroup // lease releases still being written (lease.releaseLater)
	releasing sync.Map       // upload key → the last of them on it (trackRelease)
	kept      sync.Map       // upload key → the claim kept for its next request (uploadkeep.go)
	keepFor   time.Duration  // how long (uploadKeep)
	// checkpointAfter is how long a kept claim's checkpoint waits to be
	// superseded (lease.checkpoint).
	checkpointAfter time.Duration
	now             func() time.Time // the clock cache entries age by
	catalog         catalogIndex     // catalogindex.go

	urlsAllow []*regexp.Regexp
	urlsDeny  []*regexp.Regexp
	// urlsBroken is set when a pattern did not compile: layer URLs are then
	// all refused rather than checked against half the policy.
	urlsBroken bool
}

// Drain waits, until ctx ends, for the upload lease releases still being
// written after their requests were answered (lease.releaseLater), once
// it released the claims kept for a next request (uploadkeep.go): a
// server that stops cleanly leaves no session to wait for its claims to
// lapse.
func (r *Registry) Drain(ctx context.Context) {
	r.releaseKept()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.releases.Wait()
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// leaseSkew is how long past its expiry a lease's claim is honoured by
// others (lease.go).
func (r *Registry) leaseSkew() time.Duration {
	if r.opts.LeaseSkew > 0 {
		return r.opts.LeaseSkew
	}
	return leaseSkew
}

// uploadLease is how long a request holds its upload session between
// renewals.
func (r *Registry) uploadLease() time.Duration {
	if r.opts.UploadLease > 0 {
		return r.opts.UploadLease
	}
	return uploadLeaseTerm
}

// New returns the content model over d. d is wrapped (driver.Wrap) if it
// was not, so every path is checked before it reaches the backend. A nil
// log discards.
func New(d driver.Driver, opts Options, log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{driver: driver.Wrap(d), opts: opts, log: log, now: time.Now, keepFor: uploadKeep, checkpointAfter: checkpointDelay}
	r.cache = newCache(func() time.Time { return r.now() }, opts.BlobDescriptors, opts.ContentBytes)
	for _, p := range opts.Validation.URLsAllow {
		re, err := regexp.Compile(p)
		if err != nil {
			log.Error("invalid urls.allow pattern", "pattern", p, "err", err)
			r.urlsBroken = true
			continue
		}
		r.urlsAllow = append(r.urlsAllow, re)
	}
	for _, p := range opts.Validation.URLsDeny {
		re, err := regexp.Compile(p)
		if err != nil {
			log.Error("invalid urls.deny pattern", "pattern", p, "err", err)
			r.urlsBroken = true
			continue
		}
		r.urlsDeny = append(r.urlsDeny, re)
	}
	return r
}

// Driver returns the (wrapped) driver the registry stores content with.
func (r *Registry) Driver() driver.Driver { return r.driver }

// Repository returns the repository name. It does no I/O: a repository
// exists once something is pushed to it. A name outside the distribution
// spec's grammar gives a repository whose every method fails with
// ErrNameUnknown, so such a name never reaches a driver path.
func (r *Registry) Repository(name string) Repository {
	if !ValidRepositoryName(name) {
		return invalidRepository(name)
	}
	return &repository{reg: r, name: name}
}

// repository implements Repository for a valid name. Its methods live in
// blobs.go, uploads.go, manifests.go, tags.go and referrers.go.
type repository struct {
	reg  *Registry
	name string
	// mirrored marks the repository as a pull-through mirror fills it
	// (mirrored.go): manifests stored before what they reference, deletes
	// allowed whatever storage.delete.enabled says (TTL eviction).
	mirrored bool
}

func (r *repository) Name() string { return r.name }

func (r *repository) driver() driver.Driver { return r.reg.driver }

// deleteAllowed is the storage.delete.enabled gate.
func (r *repository) deleteAllowed() error {
	if !r.reg.opts.DeleteEnabled && !r.mirrored {
		return ErrDeleteDisabled
	}
	return nil
}

// readLink reads a link file: the digest it points to. A missing link is
// driver.ErrNotFound (wrapped); a link that is not a digest is corruption,
// reported as an error.
func (r *repository) readLink(ctx context.Context, path string) (digest.Digest, error) {
	b, err := driver.GetContent(ctx, r.driver(), path, 1024)
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(string(b))
	if err != nil {
		return "", fmt.Errorf("storage: corrupt link %s: %w", path, err)
	}
	return d, nil
}

func (r *repository) writeLink(ctx context.Context, path string, d digest.Digest) error {
	// A link may be the first thing of its repository.
	if err := r.reg.markRepository(ctx, r.name); err != nil {
		return err
	}
	if err := driver.PutContent(ctx, r.driver(), path, []byte(d)); err != nil {
		return fmt.Errorf("storage: writing link: %w", err)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, driver.ErrNotFound) }

// deleteIfExists deletes path, treating "already gone" as success.
func deleteIfExists(ctx context.Context, d driver.Driver, path string) error {
	return deleted(d.Delete(ctx, path))
}

// deleted is the error of a delete, "already gone" being success.
func deleted(err error) error {
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("storage: deleting: %w", err)
	}
	return nil
}

// wrapDriverErr wraps an unexpected driver error so the HTTP layer reports
// a server error; expected conditions are mapped by the callers.
func wrapDriverErr(op string, err error) error {
	return fmt.Errorf("storage: %s: %w", op, err)
}
