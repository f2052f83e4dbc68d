package storage

import (
	"context"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Mirrored returns the repository name as a pull-through mirror fills and
// evicts it: PutManifest stores a manifest before the blobs and manifests
// it references, which the mirror fetches only when a client asks for
// them, and the deletes work whatever storage.delete.enabled says, as the
// TTL eviction needs. It is never handed to a client's request.
func (r *Registry) Mirrored(name string) Repository {
	if !ValidRepositoryName(name) {
		return invalidRepository(name)
	}
	return &repository{reg: r, name: name, mirrored: true}
}

// RemoveBlobData deletes the data of blob d from the global store, for a
// mirror's TTL eviction when every repository is a mirror: a repository
// whose link then dangles answers ErrBlobUnknown and its mirror fetches
// the blob again. Never use it where pushed repositories may link d.
func (r *Registry) RemoveBlobData(ctx context.Context, d digest.Digest) error {
	if err := validDigest(d); err != nil {
		return err
	}
	r.forgetBlob(d)
	dir := blobDataPath(d)
	dir = dir[:strings.LastIndexByte(dir, '/')]
	err := deleteIfExists(ctx, r.driver, dir)
	r.forgetBlob(d)
	return err
}

// Warnings collects the warnings one request's answer carries (the OCI
// Warning header): a mirror serving a copy it could not revalidate says so
// here. It is safe for concurrent use.
type Warnings struct {
	mu   sync.Mutex
	msgs []string
}

type warningsKey struct{}

// WithWarnings returns a context whose storage calls may add warnings to w.
func WithWarnings(ctx context.Context, w *Warnings) context.Context {
	return context.WithValue(ctx, warningsKey{}, w)
}

// Warn adds msg to the warnings of ctx's request, once; without a
// collector in ctx it does nothing.
func Warn(ctx context.Context, msg string) {
	w, _ := ctx.Value(warningsKey{}).(*Warnings)
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if m == msg {
			return
		}
	}
	w.msgs = append(w.msgs, msg)
}

// List returns the warnings added so far; a nil *Warnings has none.
func (w *Warnings) List() []string {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}
