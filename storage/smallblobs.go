package storage

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/storage/driver"
)

// Small blobs (image configs, signatures, attestations, small layers)
// are fetched again and again by every pull, and on an object store each
// fetch is a request over the network. The bytes behind a digest never
// change, so they are kept in memory once read and checked; whether a
// repository links the blob is still asked on every request
// (statLinked), so deletes and garbage collection are respected.
const (
	smallBlobMax   = 64 << 10 // largest blob kept
	smallBlobTotal = 32 << 20 // bytes kept in all
)

// smallBlobs is a bounded LRU of blob bytes by digest.
type smallBlobs struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *smallBlob, most recent first
	byKey map[digest.Digest]*list.Element
}

type smallBlob struct {
	d digest.Digest
	b []byte
}

func newSmallBlobs(max int64) *smallBlobs {
	return &smallBlobs{max: max, order: list.New(), byKey: map[digest.Digest]*list.Element{}}
}

func (c *smallBlobs) get(d digest.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[d]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*smallBlob).b, true
}

func (c *smallBlobs) add(d digest.Digest, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[d]; ok || int64(len(b)) > c.max {
		return
	}
	c.byKey[d] = c.order.PushFront(&smallBlob{d: d, b: b})
	c.size += int64(len(b))
	for c.size > c.max {
		old := c.order.Remove(c.order.Back()).(*smallBlob)
		delete(c.byKey, old.d)
		c.size -= int64(len(old.b))
	}
}

// smallBlobBytes returns the bytes of the blob target (of size bytes),
// from memory or read once from the driver and checked against the
// digest: bytes that do not match are neither kept nor served.
func (r *Registry) smallBlobBytes(ctx context.Context, drv driver.Driver, target digest.Digest, size int64) ([]byte, error) {
	if b, ok := r.small.get(target); ok {
		return b, nil
	}
	b, err := driver.GetContent(ctx, drv, blobDataPath(target), smallBlobMax)
	if err != nil {
		if isNotFound(err) {
			r.forgetBlob(target)
			return nil, &Error{Err: ErrBlobUnknown, Digest: target}
		}
		return nil, wrapDriverErr("read blob", err)
	}
	if int64(len(b)) != size || target.Algorithm().FromBytes(b) != target {
		r.log.Error("stored blob does not match its digest", "digest", target, "bytes", len(b), "size", size)
		return nil, fmt.Errorf("storage: blob %s: stored bytes do not match the digest", target)
	}
	r.small.add(target, b)
	return b, nil
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
