package storage

import (
	"context"
	"errors"
	"path"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// resolve turns a manifest reference into a digest. A tag is read from
// storage every time: tags move, possibly on another instance.
func (r *repository) resolve(ctx context.Context, ref string) (digest.Digest, error) {
	if isDigestRef(ref) {
		d := digest.Digest(ref)
		if err := validDigest(d); err != nil {
			return "", err
		}
		return d, nil
	}
	if !ValidTag(ref) {
		return "", &Error{Err: ErrManifestUnknown, Detail: "invalid tag"}
	}
	d, err := r.readLink(ctx, tagCurrentLinkPath(r.name, ref))
	if err != nil {
		if isNotFound(err) {
			return "", &Error{Err: ErrManifestUnknown, Detail: "tag " + ref + " is not in the repository"}
		}
		return "", wrapDriverErr("reading tag", err)
	}
	if err := validDigest(d); err != nil {
		return "", wrapDriverErr("reading tag", err)
	}
	return d, nil
}

// loadManifest returns the manifest d of this repository: linked under
// _manifests/revisions, its payload in the global store.
func (r *repository) loadManifest(ctx context.Context, d digest.Digest) (*manifestInfo, error) {
	return r.loadManifestAs(ctx, d, cached)
}

// loadManifestAs is loadManifest with the revision link looked up as how
// says. The payload, content by digest, may come from the cache either way.
func (r *repository) loadManifestAs(ctx context.Context, d digest.Digest, how freshness) (*manifestInfo, error) {
	target, err := r.linkTarget(ctx, revisionLink, d, ErrManifestUnknown, how)
	if err != nil {
		return nil, err
	}
	info, err := r.reg.manifestContent(ctx, target)
	if errors.Is(err, ErrManifestUnknown) {
		return nil, &Error{Err: ErrManifestUnknown, Digest: d}
	}
	return info, err
}

// GetManifest returns the manifest ref (a tag or a digest) names.
func (r *repository) GetManifest(ctx context.Context, ref string) (Manifest, error) {
	d, err := r.resolve(ctx, ref)
	if err != nil {
		return Manifest{}, err
	}
	info, err := r.loadManifest(ctx, d)
	if err != nil {
		return Manifest{}, err
	}
	return Manifest{
		Descriptor: Descriptor{MediaType: info.mediaType, Digest: d, Size: int64(len(info.payload))},
		Payload:    info.payload,
		Subject:    info.subject,
	}, nil
}

// StatManifest describes the manifest ref names. Its media type comes from
// the payload, which the cache usually holds.
func (r *repository) StatManifest(ctx context.Context, ref string) (Descriptor, error) {
	m, err := r.GetManifest(ctx, ref)
	return m.Descriptor, err
}

// PutManifest validates payload, stores it in the global store, links it
// as a revision of this repository, indexes it as a referrer of its
// subject, and points the tag ref at it. The manifest is servable by the
// time the tag moves, so a pull of the tag never sees a dangling link.
func (r *repository) PutManifest(ctx context.Context, ref string, mediaType string, payload []byte) (Manifest, error) {
	checked, doc, err := checkManifest(ref, mediaType, payload)
	if err != nil {
		return Manifest{}, err
	}
	d, mt := checked.Digest, checked.MediaType
	tag := ""
	if !isDigestRef(ref) {
		tag = ref
	}
	var refs []digest.Digest
	if !r.mirrored {
		if refs, err = r.verifyReferences(ctx, doc, mt); err != nil {
			return Manifest{}, err
		}
	}

	drv := r.driver()
	dataPath := blobDataPath(d)
	// StatFile: a new manifest's place is nothing, which Stat on an object
	// store tells only after a listing (is it a directory?) that StatFile
	// leaves out; a directory there is not a file either way.
	if _, err := driver.StatFile(ctx, drv, dataPath); err != nil {
		if !isNotFound(err) {
			return Manifest{}, wrapDriverErr("store manifest", err)
		}
		if err := driver.PutContent(ctx, drv, dataPath, payload); err != nil {
			return Manifest{}, wrapDriverErr("store manifest", err)
		}
	}
	info := infoOf(payload, mt, doc)
	r.reg.keepManifest(r.reg.cache.content.begin(), d, info)
	if err := r.addLink(ctx, revisionLink, d, d); err != nil {
		return Manifest{}, err
	}
	if err := r.confirmRevision(ctx, d, refs); err != nil {
		return Manifest{}, err
	}
	if info.subject != "" {
		if err := r.writeLink(ctx, referrerLinkDir(r.name, info.subject, d)+"/link", d); err != nil {
			return Manifest{}, err
		}
	}
	if tag != "" {
		if err := r.setTag(ctx, tag, d); err != nil {
			return Manifest{}, err
		}
	}
	r.reg.log.Info("manifest stored", "repo", r.name, "digest", d, "tag", tag, "media_type", mt)
	return Manifest{
		Descriptor: Descriptor{MediaType: mt, Digest: d, Size: int64(len(payload))},
		Payload:    payload,
		Subject:    info.subject,
	}, nil
}

// confirmRevision checks, once the revision link of d is written, that no
// garbage collection deleted or is about to delete the revision, its
// payload or what it references (gcfence.go). When one did, the revision
// is taken back, so that no manifest points at deleted content. On a
// backend error the link stays: it may have been there before this push.
func (r *repository) confirmRevision(ctx context.Context, d digest.Digest, refs []digest.Digest) error {
	id, err := r.reg.liveCollection(ctx)
	if err != nil {
		return err
	}
	err = r.reg.confirmUnder(ctx, id, append(refs, d), ErrManifestBlobUnknown)
	if err == nil {
		live, terr := r.reg.tombstoned(ctx, id, revisionTombstonePath(r.name, d))
		if terr != nil {
			return terr
		}
		if live {
			err = &Error{Err: ErrCollecting, Digest: d, Detail: "manifest " + string(d)}
		}
	}
	if collected(err, ErrManifestBlobUnknown) {
		r.takeBackLink(ctx, revisionLink, d)
	}
	return err
}

// Tag points tag at the manifest d, which must be in this repository.
func (r *repository) Tag(ctx context.Context, tag string, d digest.Digest) error {
	if !ValidTag(tag) {
		return invalidManifest("invalid tag %q", tag)
	}
	if err := validDigest(d); err != nil {
		return err
	}
	// Fresh: a tag must not point at a manifest deleted on another instance.
	if _, err := r.linkTarget(ctx, revisionLink, d, ErrManifestUnknown, fresh); err != nil {
		return err
	}
	return r.setTag(ctx, tag, d)
}

func (r *repository) setTag(ctx context.Context, tag string, d digest.Digest) error {
	// The index entry first, as Distribution does: the tag's history never
	// lacks what current points at.
	if err := r.writeLink(ctx, tagIndexLinkPath(r.name, tag, d), d); err != nil {
		return err
	}
	return r.writeLink(ctx, tagCurrentLinkPath(r.name, tag), d)
}

// DeleteManifest removes the manifest d from this repository: its
// revision link, every tag whose current link points at it (as
// Distribution does) and its entry in the referrers index. The payload
// stays in the global store until garbage collection.
func (r *repository) DeleteManifest(ctx context.Context, d digest.Digest) error {
	if err := r.deleteAllowed(); err != nil {
		return err
	}
	if err := validDigest(d); err != nil {
		return err
	}
	if _, err := r.linkTarget(ctx, revisionLink, d, ErrManifestUnknown, cached); err != nil {
		return err
	}
	// The payload tells the subject to unindex; a manifest whose payload
	// cannot be read is still deleted.
	info, err := r.loadManifest(ctx, d)
	if err != nil {
		r.reg.log.Warn("deleting unreadable manifest", "repo", r.name, "digest", d, "err", err)
		info = nil
	}

	r.forgetLink(revisionLink, d)
	err = r.driver().Delete(ctx, path.Dir(revisionLinkPath(r.name, d)))
	r.reg.invalidate(ctx, r.name, revisionLink, d)
	if err != nil {
		if isNotFound(err) {
			return &Error{Err: ErrManifestUnknown, Digest: d}
		}
		return wrapDriverErr("delete manifest", err)
	}

	tags, err := r.tagsPointingAt(ctx, d)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := deleteIfExists(ctx, r.driver(), tagDir(r.name, t)); err != nil {
			return err
		}
	}
	if info != nil && info.subject != "" && validDigest(info.subject) == nil {
		if err := deleteIfExists(ctx, r.driver(), referrerLinkDir(r.name, info.subject, d)); err != nil {
			return err
		}
	}
	r.reg.log.Info("manifest deleted", "repo", r.name, "digest", d)
	return nil
}
