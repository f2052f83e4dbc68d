package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// statGlobal describes the blob d in the global store, from the cache when
// it can. ErrBlobUnknown when there is no such blob.
func (r *Registry) statGlobal(ctx context.Context, d digest.Digest) (blobInfo, error) {
	r.noticeCollections(ctx)
	if bi, ok := r.cache.blobs.get(d); ok {
		return bi, nil
	}
	token := r.cache.blobs.begin()
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
	r.cache.blobs.add(token, d, bi, 1)
	return bi, nil
}

// forgetBlob drops what the cache knows of the blob d, after it was found
// missing behind the cache's back (a garbage collection, another instance).
func (r *Registry) forgetBlob(d digest.Digest) { r.cache.blobs.remove(d) }

// linkTarget resolves the link of kind for d in this repository to the
// digest it points at. Usually that is d itself; Distribution also links a
// blob pushed with a sha512 digest to its canonical sha256 content.
// notFound is returned (ErrBlobUnknown or ErrManifestUnknown) when there is
// no link.
func (r *repository) linkTarget(ctx context.Context, kind linkKind, d digest.Digest, notFound error) (digest.Digest, error) {
	r.reg.noticeCollections(ctx)
	key := linkKey{repo: r.name, kind: kind, d: d}
	links := r.reg.cache.links
	if t, ok := links.get(key); ok {
		return t, nil
	}
	token := links.begin()
	path := r.linkPath(kind, d)
	t, err := r.readLink(ctx, path)
	if err != nil {
		if isNotFound(err) {
			return "", &Error{Err: notFound, Digest: d}
		}
		return "", wrapDriverErr("reading link", err)
	}
	if err := validDigest(t); err != nil {
		return "", fmt.Errorf("storage: link %s points at %q: %w", path, t, err)
	}
	links.add(token, key, t, 1)
	return t, nil
}

func (r *repository) forgetLink(kind linkKind, d digest.Digest) {
	r.reg.cache.links.remove(linkKey{repo: r.name, kind: kind, d: d})
}

// addLink writes the link of kind for d, pointing at target, and caches it.
func (r *repository) addLink(ctx context.Context, kind linkKind, d, target digest.Digest) error {
	links := r.reg.cache.links
	token := links.begin()
	if err := r.writeLink(ctx, r.linkPath(kind, d), target); err != nil {
		return err
	}
	links.add(token, linkKey{repo: r.name, kind: kind, d: d}, target, 1)
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
	r.forgetLink(kind, d)
	r.reg.log.Warn("write refused: garbage collection", "repo", r.name, "digest", d)
}

// statLinked describes the blob d as this repository serves it: linked
// under _layers and present in the global store.
func (r *repository) statLinked(ctx context.Context, d digest.Digest) (digest.Digest, blobInfo, error) {
	if err := validDigest(d); err != nil {
		return "", blobInfo{}, err
	}
	target, err := r.linkTarget(ctx, layerLink, d, ErrBlobUnknown)
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

// BlobPath is the driver path of d's data, for a driver.Redirector. It
// follows a cached alias link when there is one, and does no I/O.
func (r *repository) BlobPath(d digest.Digest) (string, error) {
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
	if _, err := r.linkTarget(ctx, layerLink, d, ErrBlobUnknown); err != nil {
		return err
	}
	// Forget first and again after: a reader racing the delete cannot
	// re-add the link (see lru.begin).
	r.forgetLink(layerLink, d)
	// The link's directory goes with it, so no empty directory is left
	// behind on a filesystem.
	err := r.driver().Delete(ctx, path.Dir(layerLinkPath(r.name, d)))
	r.forgetLink(layerLink, d)
	if err != nil {
		if isNotFound(err) {
			return &Error{Err: ErrBlobUnknown, Digest: d}
		}
		return wrapDriverErr("delete blob link", err)
	}
	r.reg.log.Info("blob unlinked", "repo", r.name, "digest", d)
	return nil
}

// MountBlob links d into this repository without copying it: from another
// repository (which must link it), or, when from is "", from the global
// store, as OCI 1.1 lets a registry do when the client names no source.
func (r *repository) MountBlob(ctx context.Context, from string, d digest.Digest) (Descriptor, error) {
	if err := validDigest(d); err != nil {
		return Descriptor{}, err
	}
	target := d
	var bi blobInfo
	if from != "" {
		if !ValidRepositoryName(from) {
			return Descriptor{}, &Error{Err: ErrBlobUnknown, Digest: d, Detail: "invalid source repository"}
		}
		src := &repository{reg: r.reg, name: from}
		t, info, err := src.statLinked(ctx, d)
		if err != nil {
			return Descriptor{}, err
		}
		target, bi = t, info
	} else {
		info, err := r.reg.statGlobal(ctx, d)
		if err != nil {
			return Descriptor{}, err
		}
		bi = info
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
