package mirror

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// StatBlob describes a blob from storage, else from the fetch under way,
// else from the upstream (HEAD), without fetching it.
func (r *repository) StatBlob(ctx context.Context, d digest.Digest) (storage.Descriptor, error) {
	desc, err := r.Repository.StatBlob(ctx, d)
	if err == nil || !errors.Is(err, storage.ErrBlobUnknown) {
		return desc, err
	}
	size, err := r.src.up.statBlob(ctx, r.remote, d)
	if err != nil {
		if upstreamDown(err) {
			r.src.stats.errors.Add(1)
		}
		return storage.Descriptor{}, err
	}
	return storage.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: size}, nil
}

// OpenBlob opens a stored blob, or joins (or starts) its fetch from the
// upstream and streams it as it arrives.
func (r *repository) OpenBlob(ctx context.Context, d digest.Digest) (storage.Blob, error) {
	b, err := r.Repository.OpenBlob(ctx, d)
	if err == nil {
		r.src.stats.hits.Add(1)
		return b, nil
	}
	if !errors.Is(err, storage.ErrBlobUnknown) {
		return nil, err
	}
	if err := storage.ValidDigest(d); err != nil {
		return nil, err // not a digest storage takes
	}
	f, err := r.m.joinFill(ctx, r, d)
	if err != nil {
		return nil, err
	}
	if f == nil {
		r.src.stats.hits.Add(1)
		return r.Repository.OpenBlob(ctx, d)
	}
	r.src.stats.misses.Add(1)
	select {
	case <-f.ready:
	case <-ctx.Done():
		f.release()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	ferr, written := f.err, f.written
	f.mu.Unlock()
	if ferr != nil && written == 0 {
		f.release()
		if upstreamDown(ferr) {
			r.src.stats.errors.Add(1)
		}
		return nil, ferr
	}
	return &fillReader{f: f, ctx: ctx}, nil
}

// BlobRedirectURL is "" while the blob is being fetched: there is
// nothing in the backend to redirect a client to yet.
func (r *repository) BlobRedirectURL(req *http.Request, d digest.Digest) (string, error) {
	if r.m.fills.filling(fillKey{r.Name(), d}) {
		return "", nil
	}
	return r.Repository.BlobRedirectURL(req, d)
}
