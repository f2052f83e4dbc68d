package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// repository is a mirrored repository: reads are answered from storage,
// and from the upstream when storage has no copy; writes are refused.
type repository struct {
	storage.Repository // the stored copy, as clients read it
	m                  *Mirror
	src                *source
	remote             string // the name the upstream knows
}

// refuse is the answer to every push and delete: a mirror's content is
// its upstream's, as in Distribution's proxy mode.
func (r *repository) refuse(what string) error {
	return &storage.Error{Err: storage.ErrUnsupported, Detail: fmt.Sprintf("%s: %s is a pull-through mirror of %s", what, r.Name(), r.src.RemoteURL)}
}

func (r *repository) NewUpload(context.Context) (storage.Upload, error) {
	return nil, r.refuse("push")
}

func (r *repository) ResumeUpload(context.Context, string) (storage.Upload, error) {
	return nil, r.refuse("push")
}

func (r *repository) StatUpload(context.Context, string) (int64, error) {
	return 0, r.refuse("push")
}

func (r *repository) MountBlob(context.Context, storage.MountSource, digest.Digest) (storage.Descriptor, error) {
	return storage.Descriptor{}, r.refuse("push")
}

func (r *repository) PutManifest(context.Context, string, string, []byte) (storage.Manifest, error) {
	return storage.Manifest{}, r.refuse("push")
}

func (r *repository) Tag(context.Context, string, digest.Digest) error { return r.refuse("push") }

func (r *repository) DeleteBlob(context.Context, digest.Digest) error { return r.refuse("delete") }

func (r *repository) DeleteManifest(context.Context, digest.Digest) error {
	return r.refuse("delete")
}

func (r *repository) DeleteTag(context.Context, string) error { return r.refuse("delete") }

// filler is the repository as the mirror writes it: manifests stored
// before what they reference.
func (r *repository) filler() storage.Repository { return r.m.reg.Mirrored(r.Name()) }

// Referrers asks the upstream; when it cannot be reached, the referrers
// fetched so far answer, with a warning.
func (r *repository) Referrers(ctx context.Context, d digest.Digest, artifactType string) ([]storage.Referrer, error) {
	refs, err := r.src.up.referrers(ctx, r.remote, d, artifactType)
	if err == nil || !upstreamDown(err) {
		return refs, err
	}
	local, lerr := r.Repository.Referrers(ctx, d, artifactType)
	if lerr != nil {
		return nil, err
	}
	r.stale(ctx, err)
	return local, nil
}

// stale counts and tells the client that a cached copy answers because the
// upstream could not be asked.
func (r *repository) stale(ctx context.Context, cause error) {
	r.src.stats.stale.Add(1)
	r.m.log.Warn("serving stale copy", "repo", r.Name(), "upstream", r.src.RemoteURL, "err", cause)
	storage.Warn(ctx, "served from the mirror's cache: upstream "+r.src.RemoteURL+" could not be reached to revalidate it")
}

// upstreamDown tells an upstream that failed from one that answered "no
// such thing".
func upstreamDown(err error) bool {
	return errors.Is(err, storage.ErrUpstreamUnavailable) || errors.Is(err, storage.ErrUpstreamTimeout)
}

// isUnknown is the upstream, or storage, having no such content.
func isUnknown(err error) bool {
	return errors.Is(err, storage.ErrManifestUnknown) || errors.Is(err, storage.ErrBlobUnknown) || errors.Is(err, storage.ErrNameUnknown)
}
