package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// blobInfo is what the cache keeps of a blob in the global store.
type blobInfo struct {
	size    int64
	modTime time.Time
}

// blobMediaType is what a blob is served as: the store keeps no media type
// for blobs (neither does Distribution).
const blobMediaType = "application/octet-stream"

// statGlobal describes the blob d in the global store, from a cache when
// it can. ErrBlobUnknown when there is no such blob.
func (r *Registry) statGlobal(ctx context.Context, d digest.Digest) (blobInfo, error) {
	r.noticeCollections(ctx)
	if bi, ok := r.cache.blobs.get(d); ok {
		return bi, nil
	}
	token := r.cache.blobs.begin()
	if sh := r.opts.Shared; sh != nil {
		if b, ok, err := sh.Blob(ctx, d); err == nil && ok {
			bi := blobInfo{size: b.Size, modTime: b.ModTime}
			r.cache.blobs.add(token, d, bi, 1)
			return bi, nil
		}
	}
	gen, shared := r.sharedBegin(ctx, "")
	fi, err := r.driver.Stat(ctx, blobDataPath(d))
	if err != nil {
		if isNotFound(err) {
			return blobInfo{}, &Error{Err: ErrBlobUnknown, Digest: d}
		}
		return blobInfo{}, wrapDriverErr("stat blob", err)
	}
	if fi.IsDir {
		// A directory where data should be is corruption; refuse to
		// serve it rather than fail every request with a server error.
		r.log.Warn("blob data path is a directory", "digest", d)
		return blobInfo{}, &Error{Err: ErrBlobUnknown, Digest: d}
	}
	bi := blobInfo{size: fi.Size, modTime: fi.ModTime}
	r.rememberBlob(ctx, token, gen, shared, d, bi)
	return bi, nil
}

// rememberBlob puts what storage said of the blob d in this instance's
// cache and, when shared, in the shared one: token and gen were begun
// before storage was asked, so a delete or collection since wins.
func (r *Registry) rememberBlob(ctx context.Context, token ticket, gen string, shared bool, d digest.Digest, bi blobInfo) {
	r.cache.blobs.add(token, d, bi, 1)
	if shared {
		_ = r.opts.Shared.PutBlob(ctx, gen, d, SharedBlob{Size: bi.size, ModTime: bi.modTime})
	}
}

// forgetBlob drops what the cache knows of the blob d, after it was found
// missing behind the cache's back (a garbage collection, another instance).
func (r *Registry) forgetBlob(d digest.Digest) { r.cache.blobs.remove(d) }

// linkTarget resolves the link of kind for d in this repository to the
// digest it points at. Usually that is d itself; Distribution also links a
// blob pushed with a sha512 digest to its canonical sha256 content.
// notFound is returned (ErrBlobUnknown or ErrManifestUnknown) when there is
// no link. A cached lookup asks the shared cache when there is one that
// answers, else this instance's (bounded by StaleBound); a fresh one reads
// storage, and forgets the link everywhere it finds it gone.
func (r *repository) linkTarget(ctx context.Context, kind linkKind, d digest.Digest, notFound error, how freshness) (digest.Digest, error) {
	r.reg.noticeCollections(ctx)
	key := linkKey{repo: r.name, kind: kind, d: d}
	links := r.reg.cache.links
	if how == cached {
		if t, ok := r.cachedLink(ctx, key); ok {
			return t, nil
		}
	}
	token := links.begin()
	gen, shared := r.reg.sharedBegin(ctx, r.name)
	path := r.linkPath(kind, d)
	t, err := r.readLink(ctx, path)
	if err != nil {
		if isNotFound(err) {
			if how == fresh {
				links.remove(key)
			}
			return "", &Error{Err: notFound, Digest: d}
		}
		return "", wrapDriverErr("reading link", err)
	}
	if err := validDigest(t); err != nil {
		return "", fmt.Errorf("storage: link %s points at %q: %w", path, t, err)
	}
	links.add(token, key, t, 1)
	if shared {
		_ = r.reg.opts.Shared.PutLink(ctx, gen, sharedKey(key), t)
	}
	return t, nil
}

// cachedLink looks key up in the shared cache when it answers (a miss
// there is a miss for every instance), else in this instance's.
func (r *repository) cachedLink(ctx context.Context, key linkKey) (digest.Digest, bool) {
	if sh := r.reg.opts.Shared; sh != nil {
		if t, ok, err := sh.Link(ctx, sharedKey(key)); err == nil {
			return t, ok
		}
	}
	return r.reg.cache.links.get(key)
}

func (r *repository) forgetLink(kind linkKind, d digest.Digest) {
	r.reg.cache.links.remove(linkKey{repo: r.name, kind: kind, d: d})
}

// addLink writes the link of kind for d, pointing at target, and caches it.
func (r *repository) addLink(ctx context.Context, kind linkKind, d, target digest.Digest) error {
	links := r.reg.cache.links
	token := links.begin()
	gen, shared := r.reg.sharedBegin(ctx, r.name)
	if err := r.writeLink(ctx, r.linkPath(kind, d), target); err != nil {
		return err
	}
	key := linkKey{repo: r.name, kind: kind, d: d}
	links.add(token, key, target, 1)
	if shared {
		_ = r.reg.opts.Shared.PutLink(ctx, gen, sharedKey(key), target)
	}
	return nil
}

// linkPath is where the link of kind for d lives in this repository.
func (r *repository) linkPath(kind linkKind, d digest.Digest) string {
	if kind == revisionLink {
		return revisionLinkPath(r.name, d)
	}
	return layerLinkPath(r.name, d)
}

// takeBackLink removes the link of kind for d that a write just made, after
// the content turned out to be garbage-collected (gcfence.go): a dangling
// layer link would make the blob look present to the next push, a
// dangling revision a manifest whose content is gone.
func (r *repository) takeBackLink(ctx context.Context, kind linkKind, d digest.Digest) {
	r.forgetLink(kind, d)
	if err := deleteIfExists(ctx, r.driver(), path.Dir(r.linkPath(kind, d))); err != nil {
		r.reg.log.Error("link to collected content not taken back", "repo", r.name, "digest", d, "err", err)
	}
	// Again: a lookup that began after the first forget may have read the
	// link before it was deleted and cached it since.
	r.reg.invalidate(ctx, r.name, kind, d)
	r.reg.log.Warn("write refused: garbage collection", "repo", r.name, "digest", d)
}

// statLinked describes the blob d as this repository serves it: linked
// under _layers and present in the global store.
func (r *repository) statLinked(ctx context.Context, d digest.Digest) (digest.Digest, blobInfo, error) {
	return r.statLink(ctx, d, cached)
}

// statLink is statLinked with the link looked up as how says.
func (r *repository) statLink(ctx context.Context, d digest.Digest, how freshness) (digest.Digest, blobInfo, error) {
	if err := validDigest(d); err != nil {
		return "", blobInfo{}, err
	}
	target, err := r.linkTarget(ctx, layerLink, d, ErrBlobUnknown, how)
	if err != nil {
		return "", blobInfo{}, err
	}
	bi, err := r.reg.statGlobal(ctx, target)
	if err != nil {
		if errors.Is(err, ErrBlobUnknown) {
			return "", blobInfo{}, &Error{Err: ErrBlobUnknown, Digest: d}
		}
		return "", blobInfo{}, err
	}
	return target, bi, nil
}

// StatBlob describes a blob linked in this repository. A manifest is not a
// blob of its repository unless it was also pushed as one, as in
// Distribution.
func (r *repository) StatBlob(ctx context.Context, d digest.Digest) (Descriptor, error) {
	_, bi, err := r.statLinked(ctx, d)
	if err != nil {
		return Descriptor{}, err
	}
	return Descriptor{MediaType: blobMediaType, Digest: d, Size: bi.size}, nil
}

// OpenBlob opens a blob linked in this repository for reading.
func (r *repository) OpenBlob(ctx context.Context, d digest.Digest) (Blob, error) {
	target, bi, err := r.statLinked(ctx, d)
	if err != nil {
		return nil, err
	}
	desc := Descriptor{MediaType: blobMediaType, Digest: d, Size: bi.size}
	path := blobDataPath(target)
	drv := r.driver()
	if fo, ok := drv.(driver.FileOpener); ok {
		f, err := fo.OpenFile(ctx, path)
		switch {
		case err == nil:
			return &fileBlob{f: f, desc: desc, modTime: bi.modTime}, nil
		case isNotFound(err):
			// Removed behind the cache's back: forget it, report it gone.
			r.reg.forgetBlob(target)
			return nil, &Error{Err: ErrBlobUnknown, Digest: d}
		case !errors.Is(err, driver.ErrUnsupported):
			return nil, wrapDriverErr("open blob", err)
		}
	}
	if bi.size <= smallBlobMax {
		b, err := r.reg.smallBlobBytes(ctx, drv, target, bi.size)
		if err != nil {
			return nil, err
		}
		return &memBlob{Reader: bytes.NewReader(b), desc: desc, modTime: bi.modTime}, nil
	}
	return &readerBlob{ctx: ctx, drv: drv, path: path, desc: desc, modTime: bi.modTime}, nil
}

// BlobRedirectURL is where a client may fetch d's bytes instead of from
// Berth: the driver's presigned URL, or storage middleware's. "" means
// serve it. The caller has checked that d is linked here (OpenBlob): the
// URL itself checks nothing. req is passed to the driver untouched (a URL
// may depend on the method or the client's address).
func (r *repository) BlobRedirectURL(req *http.Request, d digest.Digest) (string, error) {
	p, err := r.blobPath(d)
	if err != nil {
		return "", err
	}
	rd, ok := r.driver().(driver.Redirector)
	if !ok {
		return "", nil
	}
	return rd.RedirectURL(req, p)
}

// blobPath is the driver path of d's data. It follows a cached alias link
// when there is one, and does no I/O.
func (r *repository) blobPath(d digest.Digest) (string, error) {
	if err := validDigest(d); err != nil {
		return "", err
	}
	if t, ok := r.reg.cache.links.get(linkKey{repo: r.name, kind: layerLink, d: d}); ok {
		return blobDataPath(t), nil
	}
	return blobDataPath(d), nil
}

// DeleteBlob unlinks d from this repository. The data stays in the global
// store (other repositories may link it) until garbage collection.
func (r *repository) DeleteBlob(ctx context.Context, d digest.Digest) error {
	if err := r.deleteAllowed(); err != nil {
		return err
	}
	if err := validDigest(d); err != nil {
		return err
	}
	if _, err := r.linkTarget(ctx, layerLink, d, ErrBlobUnknown, cached); err != nil {
		return err
	}
	// Forget first and again after: a reader racing the delete cannot
	// re-add the link (see lru.begin); after, on every instance.
	r.forgetLink(layerLink, d)
	// The link's directory goes with it, so no empty directory is left
	// behind on a filesystem.
	err := r.driver().Delete(ctx, path.Dir(layerLinkPath(r.name, d)))
	r.reg.invalidate(ctx, r.name, layerLink, d)
	if err != nil {
		if isNotFound(err) {
			return &Error{Err: ErrBlobUnknown, Digest: d}
		}
		return wrapDriverErr("delete blob link", err)
	}
	r.reg.log.Info("blob unlinked", "repo", r.name, "digest", d)
	return nil
}

// MountSource says where MountBlob may take a blob from. The zero value
// is nowhere: the caller decides what a client could already read, and
// storage links only from there.
type MountSource struct {
	// Repositories are looked in, in order; the first that links the
	// blob is its source.
	Repositories []string
	// Any takes the blob from the global store: any blob the registry
	// holds, whether a repository still links it or not. Only for a
	// caller who may read every repository.
	Any bool
}

// MountBlob links d into this repository without copying it, from where
// src allows. ErrBlobUnknown when no source has it; the caller then
// uploads it, as OCI asks, and learns nothing of repositories it may not
// read.
func (r *repository) MountBlob(ctx context.Context, src MountSource, d digest.Digest) (Descriptor, error) {
	if err := validDigest(d); err != nil {
		return Descriptor{}, err
	}
	target, bi, from, err := r.mountSource(ctx, src, d)
	if err != nil {
		return Descriptor{}, err
	}
	if err := r.addLink(ctx, layerLink, d, target); err != nil {
		return Descriptor{}, err
	}
	if err := r.reg.confirmLinked(ctx, []digest.Digest{target}, ErrBlobUnknown); err != nil {
		if collected(err, ErrBlobUnknown) {
			r.takeBackLink(ctx, layerLink, d)
		}
		return Descriptor{}, err
	}
	r.reg.log.Info("blob mounted", "repo", r.name, "from", from, "digest", d)
	return Descriptor{MediaType: blobMediaType, Digest: d, Size: bi.size}, nil
}

// mountSource finds d where src allows: the content it links to, what the
// store knows of it, and the repository it came from ("" for the global
// store).
func (r *repository) mountSource(ctx context.Context, src MountSource, d digest.Digest) (digest.Digest, blobInfo, string, error) {
	if src.Any {
		bi, err := r.reg.statGlobal(ctx, d)
		return d, bi, "", err
	}
	for _, name := range src.Repositories {
		if !ValidRepositoryName(name) {
			continue
		}
		from := &repository{reg: r.reg, name: name}
		target, bi, err := from.statLinked(ctx, d)
		switch {
		case err == nil:
			return target, bi, name, nil
		case !errors.Is(err, ErrBlobUnknown):
			return "", blobInfo{}, "", err
		}
	}
	return "", blobInfo{}, "", &Error{Err: ErrBlobUnknown, Digest: d}
}
