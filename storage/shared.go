package storage

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// SharedCache is a cache every instance on one store shares, such as Redis
// (package storage/rediscache). It holds what can go stale: which
// repositories link which content, and blob descriptors. Entries are put
// under a generation, per repository and global, that every delete
// advances (Invalidate) before it is answered, so an entry read from
// storage before a delete is never answered after it, on any instance.
//
// Every method may fail; a failure makes the caller go to storage and its
// own cache (bounded by StaleBound), never answer from a guess. An
// implementation that cannot vouch for its generations any more (it lost
// its server, and a delete may have gone unrecorded) fails every call
// until it has advanced the global generation again.
type SharedCache interface {
	// Begin returns the generation to put what repo's reads find from
	// now on under ("" for blob descriptors, which only a collection
	// deletes).
	Begin(ctx context.Context, repo string) (string, error)
	// Link returns the target of repo's link of kind for d, if it was put
	// under the current generation.
	Link(ctx context.Context, k SharedLinkKey) (digest.Digest, bool, error)
	PutLink(ctx context.Context, gen string, k SharedLinkKey, target digest.Digest) error
	// Blob returns the descriptor of the blob d in the global store, if it
	// was put under the current global generation.
	Blob(ctx context.Context, d digest.Digest) (SharedBlob, bool, error)
	PutBlob(ctx context.Context, gen string, d digest.Digest, b SharedBlob) error
	// Invalidate advances repo's generation, or the global one when repo
	// is "", and removes the entries of keys.
	Invalidate(ctx context.Context, repo string, keys ...SharedLinkKey) error
}

// SharedLinkKey names one link of one repository in a SharedCache.
type SharedLinkKey struct {
	Repo     string
	Manifest bool // a revision under _manifests; otherwise a layer under _layers
	Digest   digest.Digest
}

// SharedBlob is what a SharedCache keeps of a blob in the global store.
type SharedBlob struct {
	Size    int64
	ModTime time.Time
}

func sharedKey(k linkKey) SharedLinkKey {
	return SharedLinkKey{Repo: k.repo, Manifest: k.kind == revisionLink, Digest: k.d}
}

// sharedBegin returns the shared cache's generation for repo, and false
// when there is no shared cache or it failed.
func (r *Registry) sharedBegin(ctx context.Context, repo string) (string, bool) {
	if r.opts.Shared == nil {
		return "", false
	}
	gen, err := r.opts.Shared.Begin(ctx, repo)
	return gen, err == nil
}

// invalidate tells every instance that repo's link of kind for d is gone
// (repo "" and no d: everything a collection may have deleted). The local
// cache forgets it first; the shared cache's failure is logged and left to
// the shared cache, which stops answering until it has recovered.
func (r *Registry) invalidate(ctx context.Context, repo string, kind linkKind, d digest.Digest) {
	if repo != "" {
		r.cache.links.remove(linkKey{repo: repo, kind: kind, d: d})
	}
	if r.opts.Shared == nil {
		return
	}
	var keys []SharedLinkKey
	if repo != "" {
		keys = append(keys, sharedKey(linkKey{repo: repo, kind: kind, d: d}))
	}
	if err := r.opts.Shared.Invalidate(context.WithoutCancel(ctx), repo, keys...); err != nil {
		r.log.Warn("shared cache not invalidated", "repo", repo, "digest", d, "err", err)
	}
}
