package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// GCOptions controls a garbage collection.
type GCOptions struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// DeleteUntagged deletes the manifests no tag keeps (see GarbageCollect).
	DeleteUntagged bool
	// Online makes the collection safe while the registry takes pushes:
	// every blob and revision younger than GracePeriod is kept, what
	// would be deleted is tombstoned, and the repositories are listed
	// again before anything is (gcfence.go).
	Online      bool
	GracePeriod time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Report is called for each manifest and blob deleted (or, in a dry
	// run, that would be). It may be nil.
	Report func(GCItem)

	// For tests: the lease's term and the wait after taking it, and a
	// hook called as an online run reaches each stage ("marked",
	// "tombstoned", "rescanned").
	leaseTerm time.Duration
	stage     func(string)
}

// GCItem is one thing a collection deletes.
type GCItem struct {
	Kind       string // "manifest" or "blob"
	Repository string // for a manifest
	Digest     digest.Digest
	Size       int64
}

// GCResult sums up a collection.
type GCResult struct {
	Manifests  int
	Blobs      int
	BytesFreed int64 // bytes of the blobs swept
}

// GarbageCollect deletes the blobs no manifest references.
//
// It marks, in every repository, each kept manifest's own blob, its config
// and layers, and recursively the manifests an index lists (and their
// blobs). Every revision is kept unless DeleteUntagged is set; then a
// manifest is kept only when a tag points at it, a kept index lists it, or
// its subject is a kept manifest (a signature or SBOM lives as long as its
// image). Unmarked blobs are swept from the global store, with the
// repositories' _layers links to them.
func (r *Registry) GarbageCollect(ctx context.Context, opts GCOptions) (res GCResult, err error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	g := &collector{reg: r, opts: opts, payloads: map[digest.Digest]*gcManifest{}, marked: map[digest.Digest]bool{}}
	if opts.Online {
		g.cutoff = now().Add(-opts.GracePeriod)
	}
	if !opts.DryRun {
		g.fence, err = acquireFence(ctx, r.driver, opts.leaseTerm, r.leaseSkew())
		if err != nil {
			return GCResult{}, err
		}
		defer func() {
			rerr := g.fence.release(context.WithoutCancel(ctx), res.Blobs+res.Manifests > 0)
			if err == nil {
				err = rerr
			}
		}()
	}

	repos, err := g.scan(ctx)
	if err != nil {
		return GCResult{}, err
	}
	if err := g.markAll(ctx, repos); err != nil {
		return GCResult{}, err
	}
	doomed, err := g.candidates(ctx)
	if err != nil {
		return GCResult{}, err
	}
	if opts.Online {
		g.reached("marked")
		if !opts.DryRun {
			if err := g.tombstone(ctx, repos, doomed); err != nil {
				return GCResult{}, err
			}
		}
		// What was linked until the tombstones were written is listed
		// now and keeps what it references; what is linked later finds
		// a tombstone (gcfence.go). Payloads already read come from
		// g.payloads.
		g.reached("tombstoned")
		again, err := g.scan(ctx)
		if err != nil {
			return GCResult{}, err
		}
		if err := g.markAll(ctx, again); err != nil {
			return GCResult{}, err
		}
		for name, rs := range again {
			old, ok := repos[name]
			if !ok {
				// New since the first listing: all of it is young and
				// kept; there is nothing to delete in it.
				continue
			}
			for d := range rs.kept {
				old.kept[d] = true
			}
		}
		g.reached("rescanned")
	}

	if opts.DeleteUntagged {
		if err := g.deleteUntagged(ctx, repos, &res); err != nil {
			return res, err
		}
	}
	swept, err := g.sweep(ctx, doomed, &res)
	if err != nil {
		return res, err
	}
	if !opts.DryRun {
		if len(swept) > 0 {
			// Every instance's descriptors of the swept blobs go at once.
			r.invalidate(ctx, "", layerLink, "")
		}
		for name, rs := range repos {
			for d := range rs.layers {
				if swept[d] {
					if err := deleteIfExists(ctx, r.driver, path.Dir(layerLinkPath(name, d))); err != nil {
						return res, err
					}
					r.invalidate(ctx, name, layerLink, d)
				}
			}
		}
		if r.catalogIndexed() {
			if err := g.reconcileCatalog(ctx, repos); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func (g *collector) reached(stage string) {
	if g.opts.stage != nil {
		g.opts.stage(stage)
	}
}

// collector holds one collection's state.
type collector struct {
	reg      *Registry
	opts     GCOptions
	fence    *fence    // nil in a dry run
	cutoff   time.Time // online: anything modified after it is kept
	payloads map[digest.Digest]*gcManifest
	marked   map[digest.Digest]bool
}

// gcRepo is what a scan found in one repository.
type gcRepo struct {
	revisions map[digest.Digest]time.Time // revision link → its ModTime
	tagged    map[digest.Digest]bool      // targets of tags' current links
	layers    map[digest.Digest]time.Time // _layers links
	kept      map[digest.Digest]bool      // manifests that survive
}

// gcManifest is what marking needs of a stored manifest.
type gcManifest struct {
	size     int64
	blobs    []digest.Digest // config and layers
	children []digest.Digest // manifests an index lists
	subject  digest.Digest
}

func newGCRepo() *gcRepo {
	return &gcRepo{revisions: map[digest.Digest]time.Time{}, tagged: map[digest.Digest]bool{}, layers: map[digest.Digest]time.Time{}, kept: map[digest.Digest]bool{}}
}

// scan lists every repository's revisions, tags and layer links in one
// walk of the repositories tree. Uploads and tag histories are skipped.
func (g *collector) scan(ctx context.Context) (map[string]*gcRepo, error) {
	repos := map[string]*gcRepo{}
	prefix := repositoriesRoot + "/"
	err := driver.Walk(ctx, g.reg.driver, repositoriesRoot, func(fi driver.FileInfo) error {
		rest := strings.TrimPrefix(fi.Path, prefix)
		comps := strings.Split(rest, "/")
		i := 0
		for i < len(comps) && !strings.HasPrefix(comps[i], "_") {
			i++
		}
		if i == 0 || i == len(comps) {
			return nil // a repository name's directories
		}
		name, kind, sub := strings.Join(comps[:i], "/"), comps[i], comps[i+1:]
		if fi.IsDir {
			switch {
			case kind == "_uploads" && len(sub) == 0:
				return driver.ErrSkipDir
			case kind == "_manifests" && len(sub) == 3 && sub[0] == "tags" && sub[2] == "index":
				return driver.ErrSkipDir
			}
			return nil
		}
		rs := repos[name]
		if rs == nil {
			rs = newGCRepo()
			repos[name] = rs
		}
		switch {
		case kind == "_manifests" && len(sub) == 4 && sub[0] == "revisions" && sub[3] == "link":
			if d, ok := pathDigest(sub[1], sub[2]); ok {
				rs.revisions[d] = fi.ModTime
			}
		case kind == "_manifests" && len(sub) == 4 && sub[0] == "tags" && sub[2] == "current" && sub[3] == "link":
			b, err := driver.GetContent(ctx, g.reg.driver, fi.Path, 1024)
			if err != nil {
				if isNotFound(err) {
					return nil // the tag was deleted since it was listed
				}
				return err
			}
			d, err := digest.Parse(string(b))
			if err != nil {
				return fmt.Errorf("storage: gc: corrupt tag link %s: %w", fi.Path, err)
			}
			rs.tagged[d] = true
		case kind == "_layers" && len(sub) == 3 && sub[2] == "link":
			if d, ok := pathDigest(sub[0], sub[1]); ok {
				rs.layers[d] = fi.ModTime
			}
		}
		return nil
	})
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("storage: gc: listing repositories: %w", err)
	}
	return repos, nil
}

// pathDigest reads the digest of a <alg>/<hex> pair of path components.
func pathDigest(alg, hex string) (digest.Digest, bool) {
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, validDigest(d) == nil
}

// markAll decides which manifests each repository keeps and marks every
// blob they reference.
func (g *collector) markAll(ctx context.Context, repos map[string]*gcRepo) error {
	for name, rs := range repos {
		for d, mod := range rs.revisions {
			young := g.opts.Online && mod.After(g.cutoff)
			if !g.opts.DeleteUntagged || rs.tagged[d] || young {
				if err := g.keep(ctx, name, rs, d); err != nil {
					return err
				}
			}
		}
		if g.opts.DeleteUntagged {
			// Referrers of kept manifests are kept; keeping one may keep
			// the referrers of its own, so repeat until nothing changes.
			for changed := true; changed; {
				changed = false
				for d := range rs.revisions {
					if rs.kept[d] {
						continue
					}
					m, err := g.manifest(ctx, d)
					if err != nil {
						return err
					}
					if m != nil && m.subject != "" && rs.kept[m.subject] {
						if err := g.keep(ctx, name, rs, d); err != nil {
							return err
						}
						changed = true
					}
				}
			}
		}
		for d, mod := range rs.layers {
			// A layer linked during an online run may be about to be
			// referenced by a manifest not yet pushed.
			if g.opts.Online && mod.After(g.cutoff) {
				g.marked[d] = true
			}
		}
	}
	return nil
}

// keep marks the manifest d of repository name, what it references, and
// the manifests it lists.
func (g *collector) keep(ctx context.Context, name string, rs *gcRepo, d digest.Digest) error {
	if rs.kept[d] {
		return nil
	}
	rs.kept[d] = true
	g.marked[d] = true
	m, err := g.manifest(ctx, d)
	if err != nil || m == nil {
		return err
	}
	for _, b := range m.blobs {
		g.marked[b] = true
	}
	for _, c := range m.children {
		if err := g.keep(ctx, name, rs, c); err != nil {
			return err
		}
	}
	return nil
}

// manifest reads and parses the stored manifest d, once per collection.
// A manifest whose payload is gone gives nil: there is nothing to mark.
// A payload that cannot be parsed stops the collection, since what it
// references is unknown and might otherwise be swept.
func (g *collector) manifest(ctx context.Context, d digest.Digest) (*gcManifest, error) {
	if m, ok := g.payloads[d]; ok {
		return m, nil
	}
	payload, err := driver.GetContent(ctx, g.reg.driver, blobDataPath(d), maxStoredManifest)
	if err != nil {
		if isNotFound(err) {
			g.reg.log.Warn("gc: manifest payload missing", "digest", d)
			g.payloads[d] = nil
			return nil, nil
		}
		return nil, fmt.Errorf("storage: gc: reading manifest %s: %w", d, err)
	}
	var doc struct {
		manifestDoc
		FSLayers []struct {
			BlobSum digest.Digest `json:"blobSum"`
		} `json:"fsLayers"` // schema 1, which older registries stored
	}
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("storage: gc: manifest %s is not JSON, refusing to sweep what it may reference: %w", d, err)
	}
	m := &gcManifest{size: int64(len(payload))}
	if doc.Config != nil {
		m.blobs = append(m.blobs, doc.Config.Digest)
	}
	for _, l := range doc.Layers {
		m.blobs = append(m.blobs, l.Digest)
	}
	for _, l := range doc.FSLayers {
		m.blobs = append(m.blobs, l.BlobSum)
	}
	for _, c := range doc.Manifests {
		m.children = append(m.children, c.Digest)
	}
	if doc.Subject != nil {
		m.subject = doc.Subject.Digest
	}
	g.payloads[d] = m
	return m, nil
}

// deleteUntagged removes the revisions no repository keeps.
func (g *collector) deleteUntagged(ctx context.Context, repos map[string]*gcRepo, res *GCResult) error {
	for name, rs := range repos {
		for d := range rs.revisions {
			if rs.kept[d] {
				continue
			}
			m := g.payloads[d]
			item := GCItem{Kind: "manifest", Repository: name, Digest: d}
			if m != nil {
				item.Size = m.size
			}
			if !g.opts.DryRun {
				if err := g.fence.check(); err != nil {
					return err
				}
				if err := deleteIfExists(ctx, g.reg.driver, path.Dir(revisionLinkPath(name, d))); err != nil {
					return err
				}
				g.reg.invalidate(ctx, name, revisionLink, d)
				if m != nil && m.subject != "" && validDigest(m.subject) == nil {
					if err := deleteIfExists(ctx, g.reg.driver, referrerLinkDir(name, m.subject, d)); err != nil {
						return err
					}
				}
			}
			res.Manifests++
			if g.opts.Report != nil {
				g.opts.Report(item)
			}
		}
	}
	return nil
}

// candidates lists the blobs the first marking left unmarked (online: only
// those older than the grace period).
func (g *collector) candidates(ctx context.Context) ([]GCItem, error) {
	var doomed []GCItem
	err := driver.Walk(ctx, g.reg.driver, blobsRoot, func(fi driver.FileInfo) error {
		if fi.IsDir || path.Base(fi.Path) != "data" {
			return nil
		}
		dir := path.Dir(fi.Path)
		d, ok := pathDigest(path.Base(path.Dir(path.Dir(dir))), path.Base(dir))
		if !ok || g.marked[d] {
			return nil
		}
		if g.opts.Online && fi.ModTime.After(g.cutoff) {
			return nil
		}
		doomed = append(doomed, GCItem{Kind: "blob", Digest: d, Size: fi.Size})
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, fmt.Errorf("storage: gc: listing blobs: %w", err)
	}
	return doomed, nil
}

// tombstone marks, before the second listing of an online run, every blob
// and revision the first one would delete.
func (g *collector) tombstone(ctx context.Context, repos map[string]*gcRepo, doomed []GCItem) error {
	for _, it := range doomed {
		if err := g.fence.tombstone(ctx, blobTombstonePath(it.Digest)); err != nil {
			return err
		}
	}
	if !g.opts.DeleteUntagged {
		return nil
	}
	for name, rs := range repos {
		for d := range rs.revisions {
			if !rs.kept[d] {
				if err := g.fence.tombstone(ctx, revisionTombstonePath(name, d)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sweep deletes the candidates still unmarked and returns the digests it
// deleted.
func (g *collector) sweep(ctx context.Context, doomed []GCItem, res *GCResult) (map[digest.Digest]bool, error) {
	swept := map[digest.Digest]bool{}
	for _, it := range doomed {
		if g.marked[it.Digest] {
			continue // referenced by what the second listing found
		}
		if !g.opts.DryRun {
			if err := g.fence.check(); err != nil {
				return swept, err
			}
			if err := deleteIfExists(ctx, g.reg.driver, path.Dir(blobDataPath(it.Digest))); err != nil {
				return swept, err
			}
			g.reg.forgetBlob(it.Digest)
			g.reg.cache.content.remove(it.Digest)
		}
		swept[it.Digest] = true
		res.Blobs++
		res.BytesFreed += it.Size
		if g.opts.Report != nil {
			g.opts.Report(it)
		}
	}
	return swept, nil
}
