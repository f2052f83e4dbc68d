package storage

import (
	"context"
	"net/http"

	"github.com/opencontainers/go-digest"
)

// invalidRepository is what Repository returns for a name outside the
// distribution spec's grammar: everything fails with ErrNameUnknown, and
// the name is never made into a driver path.
type invalidRepository string

func (n invalidRepository) err() error {
	return &Error{Err: ErrNameUnknown, Detail: "invalid repository name"}
}

func (n invalidRepository) Name() string { return string(n) }

func (n invalidRepository) StatBlob(context.Context, digest.Digest) (Descriptor, error) {
	return Descriptor{}, n.err()
}

func (n invalidRepository) OpenBlob(context.Context, digest.Digest) (Blob, error) {
	return nil, n.err()
}

func (n invalidRepository) BlobRedirectURL(*http.Request, digest.Digest) (string, error) {
	return "", n.err()
}

func (n invalidRepository) DeleteBlob(context.Context, digest.Digest) error { return n.err() }

func (n invalidRepository) MountBlob(context.Context, MountSource, digest.Digest) (Descriptor, error) {
	return Descriptor{}, n.err()
}

func (n invalidRepository) NewUpload(context.Context) (Upload, error) { return nil, n.err() }

func (n invalidRepository) StatUpload(context.Context, string) (int64, error) { return 0, n.err() }
func (n invalidRepository) ResumeUpload(context.Context, string) (Upload, error) {
	return nil, n.err()
}

func (n invalidRepository) GetManifest(context.Context, string) (Manifest, error) {
	return Manifest{}, n.err()
}

func (n invalidRepository) StatManifest(context.Context, string) (Descriptor, error) {
	return Descriptor{}, n.err()
}

func (n invalidRepository) PutManifest(context.Context, string, string, []byte) (Manifest, error) {
	return Manifest{}, n.err()
}

func (n invalidRepository) DeleteManifest(context.Context, digest.Digest) error { return n.err() }

func (n invalidRepository) Tag(context.Context, string, digest.Digest) error { return n.err() }

func (n invalidRepository) DeleteTag(context.Context, string) error { return n.err() }

func (n invalidRepository) Tags(context.Context, int, string) ([]string, bool, error) {
	return nil, false, n.err()
}

func (n invalidRepository) Referrers(context.Context, digest.Digest, string) ([]Referrer, error) {
	return nil, n.err()
}
