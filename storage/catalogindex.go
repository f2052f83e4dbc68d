package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// On an object store the catalog walk (catalogpage.go) lists every
// repository's directory, one request each: a page of 1 000 names costs
// 1 000 listings. The catalog index is one flat directory of empty
// objects, one per repository, named by the hex of the repository's name,
// which Distribution ignores as it ignores everything below _berth:
//
//	/docker/registry/v2/_berth/catalog/names/<hex of the name>
//	/docker/registry/v2/_berth/catalog/complete     every repository has its marker
//	/docker/registry/v2/_berth/catalog/lease/<n>    the claims of the build (lease.go)
//
// Hex keeps the order of the names' bytes and their prefixes, so one
// listing from after hex(last) returns the next page of the catalog in its
// order, and it has no "/", so names that nest (team, team/app) are
// siblings there.
//
// Every instance writes a repository's marker before it writes anything
// that makes the repository (a link, an upload's data), and remembers for
// markTTL that it did. The index is read only once complete exists: until
// then the walk serves the catalog and one instance, under the lease,
// walks every repository once, writing the missing markers, then writes
// complete. A repository created meanwhile has its marker from its
// creator, so nothing is missed.
//
// A marker outlives its repository when everything in it is deleted: the
// catalog lists the name, as Distribution does on a file system where the
// empty directories stay, until a garbage collection prunes it (gc.go).
const (
	catalogRoot         = rootPath + "/_berth/catalog"
	catalogNamesDir     = catalogRoot + "/names"
	catalogCompletePath = catalogRoot + "/complete"
	catalogLeaseDir     = catalogRoot + "/lease"
)

// markTTL is how long an instance trusts that a marker it wrote is still
// there. A collection prunes only markers older than markPruneAge, by
// their modification time: a marker younger than markTTL plus any clock
// difference is never pruned, so a remembered marker is always there.
const (
	markTTL      = 30 * time.Minute
	markPruneAge = time.Hour
	// markMemoMax bounds the names an instance remembers; past it the
	// memory starts over, which costs a marker write per repository.
	markMemoMax = 100_000
	// completeRecheck is how long an instance trusts that the index is
	// complete before it looks again: deleting complete (to rebuild after
	// Distribution wrote to the store alone) is seen within it.
	completeRecheck = time.Minute
)

func catalogMarkerPath(name string) string {
	return catalogNamesDir + "/" + hex.EncodeToString([]byte(name))
}

// catalogIndex is one instance's state of the index.
type catalogIndex struct {
	mu       sync.Mutex
	marked   map[string]time.Time // name → when its marker write was sent
	complete time.Time            // until when complete is trusted
	building bool                 // a build runs in this process
	tried    time.Time            // when a build last found the lease held
	// built, when set, is called with the build's outcome (tests, bench).
	built func(error)
	// marking holds the marker writes in flight, closed when each ends:
	// the uploads a client starts together in a new repository (docker
	// pushes five layers at once) wait for one write instead of each
	// sending its own.
	marking map[string]chan struct{}
}

// catalogIndexed tells whether the registry keeps the index: on an object
// store, unless turned off, or while Distribution may write to the store
// too (it would not write markers).
func (r *Registry) catalogIndexed() bool {
	return !r.opts.NoCatalogIndex && !r.opts.DistributionUploads && !driver.HasDirTimes(r.driver)
}

// markRepository writes name's marker, unless this instance wrote it less
// than markTTL ago. It comes before whatever makes the repository, so a
// repository never lacks its marker.
func (r *Registry) markRepository(ctx context.Context, name string) error {
	if !r.catalogIndexed() {
		return nil
	}
	c := &r.catalog
	for {
		now := time.Now()
		c.mu.Lock()
		at, ok := c.marked[name]
		if ok && now.Sub(at) < markTTL {
			c.mu.Unlock()
			return nil
		}
		if wait, busy := c.marking[name]; busy {
			// Another request is writing it: its outcome is this one's,
			// and a failed write is tried again here.
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return wrapDriverErr("catalog index", ctx.Err())
			}
		}
		if c.marking == nil {
			c.marking = map[string]chan struct{}{}
		}
		done := make(chan struct{})
		c.marking[name] = done
		c.mu.Unlock()

		err := driver.PutContent(ctx, r.driver, catalogMarkerPath(name), nil)
		c.mu.Lock()
		delete(c.marking, name)
		close(done)
		if err == nil {
			if c.marked == nil || len(c.marked) >= markMemoMax {
				c.marked = map[string]time.Time{}
			}
			c.marked[name] = now
		}
		c.mu.Unlock()
		if err != nil {
			return wrapDriverErr("catalog index", err)
		}
		return nil
	}
}

// forgetMarks drops what this instance remembers of names' markers.
func (r *Registry) forgetMarks(names []string) {
	c := &r.catalog
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		delete(c.marked, n)
	}
}

// catalogIndexReady tells whether complete is there (looked up at most
// every completeRecheck once it was found). When it is not, it starts a
// build in the background, unless one runs here or another instance
// held the lease less than a lease term ago.
func (r *Registry) catalogIndexReady(ctx context.Context) (bool, error) {
	c := &r.catalog
	c.mu.Lock()
	trusted := time.Now().Before(c.complete)
	c.mu.Unlock()
	if trusted {
		return true, nil
	}
	_, err := r.driver.Stat(ctx, catalogCompletePath)
	if err == nil {
		c.mu.Lock()
		c.complete = time.Now().Add(completeRecheck)
		c.mu.Unlock()
		return true, nil
	}
	if !isNotFound(err) {
		return false, wrapDriverErr("catalog index", err)
	}
	if r.opts.NoCatalogBuild {
		return false, nil
	}
	c.mu.Lock()
	start := !c.building && time.Since(c.tried) > defaultLeaseTerm
	if start {
		c.building = true
	}
	c.mu.Unlock()
	if start {
		go func() {
			err := r.BuildCatalogIndex(context.WithoutCancel(ctx))
			c.mu.Lock()
			c.building = false
			if err != nil {
				// Held by another instance, or failing: not again
				// before a lease term.
				c.tried = time.Now()
			}
			built := c.built
			c.mu.Unlock()
			switch {
			case err == nil:
				r.log.Info("catalog index built")
			case errors.Is(err, ErrLeaseHeld):
				r.log.Debug("catalog index being built by another instance", "err", err)
			default:
				r.log.Error("building the catalog index", "err", err)
			}
			if built != nil {
				built(err)
			}
		}()
	}
	return false, nil
}

// CatalogIndexComplete tells whether the catalog index is complete on the
// store (false when the registry keeps none).
func (r *Registry) CatalogIndexComplete(ctx context.Context) (bool, error) {
	if !r.catalogIndexed() {
		return false, nil
	}
	_, err := r.driver.Stat(ctx, catalogCompletePath)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// BuildCatalogIndex writes the marker of every repository that lacks one,
// then complete, under the build's lease: an error wrapping ErrLeaseHeld
// when another instance is building. The catalog starts it by itself when
// complete is missing; it is exported for tests and tools.
func (r *Registry) BuildCatalogIndex(ctx context.Context) error {
	if !r.catalogIndexed() {
		return nil
	}
	l, _, err := acquireLease(ctx, r.driver, catalogLeaseDir, defaultLeaseTerm, r.leaseSkew(), true)
	if err != nil {
		return fmt.Errorf("storage: catalog index: %w", err)
	}
	l.keepAlive(ctx, 0)
	err = r.buildCatalogIndex(ctx, l)
	if rerr := l.release(context.WithoutCancel(ctx), 0); err == nil && rerr != nil && !errors.Is(rerr, errLeaseLost) {
		err = rerr
	}
	return err
}

func (r *Registry) buildCatalogIndex(ctx context.Context, l *lease) error {
	have, err := r.catalogMarkers(ctx)
	if err != nil {
		return err
	}
	// The markers of a page are written while the next page is walked:
	// S6c (10 000 repositories through the WAN-shaped link) took the
	// walk's time plus the writes' one after the other.
	puts := make(chan error, 1)
	puts <- nil
	last := ""
	for {
		page, err := r.catalogPage(ctx, catalogPageSize, last)
		if err != nil {
			<-puts
			return err
		}
		var missing []string
		for _, name := range page {
			if !have[name] {
				missing = append(missing, name)
			}
		}
		if err := <-puts; err != nil {
			return err
		}
		if err := l.valid(); err != nil {
			return fmt.Errorf("storage: catalog index: %w", err)
		}
		go func() { puts <- r.putMarkers(ctx, missing, markerParallel) }()
		if len(page) < catalogPageSize {
			break
		}
		last = page[len(page)-1]
	}
	if err := <-puts; err != nil {
		return err
	}
	if err := l.valid(); err != nil {
		return fmt.Errorf("storage: catalog index: %w", err)
	}
	if err := driver.PutContent(ctx, r.driver, catalogCompletePath, nil); err != nil {
		return wrapDriverErr("catalog index", err)
	}
	return nil
}

// markerParallel is how many markers a build writes at a time: small
// writes, which an object store takes many of at once.
const markerParallel = 64

// putMarkers writes the markers of names, parallel at a time.
func (r *Registry) putMarkers(ctx context.Context, names []string, parallel int) error {
	errs := make([]error, len(names))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = driver.PutContent(ctx, r.driver, catalogMarkerPath(name), nil)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return wrapDriverErr("catalog index", err)
	}
	return nil
}

// catalogMarkers returns the names that have a marker.
func (r *Registry) catalogMarkers(ctx context.Context) (map[string]bool, error) {
	have := map[string]bool{}
	after := ""
	for {
		page, more, err := driver.ListPage(ctx, r.driver, catalogNamesDir, after, catalogPageSize)
		if err != nil {
			if isNotFound(err) {
				return have, nil
			}
			return nil, wrapDriverErr("catalog index", err)
		}
		for _, p := range page {
			if name, ok := markerName(path.Base(p)); ok {
				have[name] = true
			}
		}
		if !more {
			return have, nil
		}
		after = path.Base(page[len(page)-1])
	}
}

// markerName decodes a marker's key; what is not the hex of a valid
// repository name was not written by Berth and is no repository.
func markerName(key string) (string, bool) {
	b, err := hex.DecodeString(key)
	if err != nil || !ValidRepositoryName(string(b)) {
		return "", false
	}
	return string(b), true
}

// catalogFromIndex returns up to n names (all when n <= 0) after last,
// from the index: one listing per catalogPageSize names.
func (r *Registry) catalogFromIndex(ctx context.Context, n int, last string) ([]string, error) {
	names := []string{}
	after := hex.EncodeToString([]byte(last))
	for n <= 0 || len(names) < n {
		size := catalogPageSize
		if n > 0 {
			size = min(size, n-len(names))
		}
		page, more, err := driver.ListPage(ctx, r.driver, catalogNamesDir, after, size)
		if err != nil {
			if isNotFound(err) {
				break
			}
			return nil, wrapDriverErr("catalog", err)
		}
		for _, p := range page {
			if name, ok := markerName(path.Base(p)); ok {
				names = append(names, name)
			}
		}
		if !more {
			break
		}
		after = path.Base(page[len(page)-1])
	}
	return names, nil
}
