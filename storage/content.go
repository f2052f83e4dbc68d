package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/storage/driver"
)

// Content addressed by digest never changes, and a pull fetches the same
// small pieces of it again and again: manifests, and small blobs (image
// configs, signatures, attestations) that a driver without files serves;
// on an object store each fetch is a request over the network. So their
// bytes are kept in memory once read and checked against their digest,
// in one LRU bounded in bytes. Only bytes are kept: whether a repository
// links them is asked on every request (linkTarget), from the shared cache
// or storage as docs/scaling.md states, so deletes and garbage collection
// are followed on every instance.
const (
	contentCacheMax = 64 << 20        // bytes kept in all, manifests and blobs together
	smallBlobMax    = 64 << 10        // largest blob kept
	manifestKeptMax = maxManifestSize // largest manifest kept; larger stored ones are read each time
	contentOverhead = 256             // what an entry costs beside its bytes
)

// content is what the cache keeps of one digest: its checked bytes and,
// once they were read as a manifest, what they say as one.
type content struct {
	b        []byte
	manifest *manifestInfo
}

func contentCost(b []byte) int64 { return int64(len(b)) + contentOverhead }

// readContent reads the data of target from the global store, at most max
// bytes, and checks it against the digest (and against size, unless it is
// negative): bytes that do not match are neither kept nor served, and the
// fault is logged for the operator. notFound is what a missing file is.
func (r *Registry) readContent(ctx context.Context, drv driver.Driver, target digest.Digest, size, max int64, notFound error) ([]byte, error) {
	b, err := driver.GetContent(ctx, drv, blobDataPath(target), max)
	if err != nil {
		if isNotFound(err) {
			r.forgetBlob(target)
			return nil, &Error{Err: notFound, Digest: target}
		}
		return nil, wrapDriverErr("read content", err)
	}
	if (size >= 0 && int64(len(b)) != size) || target.Algorithm().FromBytes(b) != target {
		r.log.Error("stored content does not match its digest", "digest", target, "bytes", len(b), "size", size)
		return nil, fmt.Errorf("storage: %s: stored bytes do not match the digest", target)
	}
	return b, nil
}

// smallBlobBytes returns the bytes of the blob target (of size bytes),
// from memory or read once from the driver and checked.
func (r *Registry) smallBlobBytes(ctx context.Context, drv driver.Driver, target digest.Digest, size int64) ([]byte, error) {
	cc := r.cache.content
	if c, ok := cc.get(target); ok {
		return c.b, nil
	}
	token := cc.begin()
	b, err := r.readContent(ctx, drv, target, size, smallBlobMax, ErrBlobUnknown)
	if err != nil {
		return nil, err
	}
	cc.add(token, target, &content{b: b}, contentCost(b))
	return b, nil
}

// manifestContent returns the manifest stored as target, from memory or
// read once from the driver and checked. A manifest larger than
// manifestKeptMax (a tree another tool wrote) is served but not kept.
func (r *Registry) manifestContent(ctx context.Context, target digest.Digest) (*manifestInfo, error) {
	cc := r.cache.content
	c, ok := cc.get(target)
	if ok && c.manifest != nil {
		return c.manifest, nil
	}
	token := cc.begin()
	var b []byte
	if ok {
		b = c.b // kept as a blob: checked already
	} else {
		var err error
		if b, err = r.readContent(ctx, r.driver, target, -1, maxStoredManifest, ErrManifestUnknown); err != nil {
			return nil, err
		}
	}
	info, err := describe(b)
	if err != nil {
		return nil, err
	}
	r.keepManifest(token, target, info)
	return info, nil
}

// keepManifest keeps info, whose payload hashes to d, unless it is too
// large or something was removed since token was taken.
func (r *Registry) keepManifest(token ticket, d digest.Digest, info *manifestInfo) {
	if int64(len(info.payload)) > manifestKeptMax {
		return
	}
	r.cache.content.add(token, d, &content{b: info.payload, manifest: info}, contentCost(info.payload))
}

// memBlob serves a blob from memory.
type memBlob struct {
	*bytes.Reader
	desc    Descriptor
	modTime time.Time
}

func (b *memBlob) Close() error           { return nil }
func (b *memBlob) Descriptor() Descriptor { return b.desc }
func (b *memBlob) ModTime() time.Time     { return b.modTime }
func (b *memBlob) File() *os.File         { return nil }

// Open implements Blob: the bytes are here, there is nothing to reach.
func (b *memBlob) Open(offset int64) error {
	_, err := b.Seek(offset, io.SeekStart)
	return err
}
