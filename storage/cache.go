package storage

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// Cache bounds. Content is addressed by digest and never changes, so the
// only thing that invalidates an entry is a delete.
const (
	blobCacheEntries = 1 << 17  // digest → size and time, ~150 bytes each
	linkCacheEntries = 1 << 17  // repository link → target digest
	manifestCacheMax = 64 << 20 // bytes of manifest payload
	tagListCacheMax  = 1 << 18  // tag names, over all repositories
)

// linkKind tells which of a repository's link sets a cached link is in.
type linkKind byte

const (
	layerLink    linkKind = 'l' // _layers: blobs servable from the repository
	revisionLink linkKind = 'm' // _manifests/revisions: the repository's manifests
)

type linkKey struct {
	repo string
	kind linkKind
	d    digest.Digest
}

// cache holds what lets a pull skip the driver: which blobs exist and how
// big they are, which repositories link them, and manifest payloads. What
// a tag points at is never cached: tags move, possibly on another
// instance. Only the sorted list of a repository's tag names is, on a
// file system, checked against its directory's modification time at
// every use (tags.go).
type cache struct {
	blobs     *lru[digest.Digest, blobInfo]
	links     *lru[linkKey, digest.Digest]
	manifests *lru[digest.Digest, *manifestInfo]
	tagLists  *lru[string, tagList]
}

func newCache() *cache {
	return &cache{
		blobs:     newLRU[digest.Digest, blobInfo](blobCacheEntries),
		links:     newLRU[linkKey, digest.Digest](linkCacheEntries),
		manifests: newLRU[digest.Digest, *manifestInfo](manifestCacheMax),
		tagLists:  newLRU[string, tagList](tagListCacheMax),
	}
}

// lru is a least-recently-used map bounded by the summed cost of its
// entries, safe for concurrent use.
//
// A reader that misses reads the driver and then adds what it found. If a
// delete ran in between, that add would resurrect what the delete removed;
// so a reader takes a token (begin) before it reads the driver and the add
// is dropped when any removal happened since.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front: most recently used
	items map[K]*list.Element
	epoch uint64 // incremented by every removal

	hits, misses atomic.Uint64 // lookups by get, for CacheStats
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

func newLRU[K comparable, V any](max int64) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		c.misses.Add(1)
		var zero V
		return zero, false
	}
	c.hits.Add(1)
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).val, true
}

// begin returns the token to pass to add for what is read from now on.
func (c *lru[K, V]) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// add stores v under k unless something was removed since token was taken.
// An entry costing more than the whole budget is not stored.
func (c *lru[K, V]) add(token uint64, k K, v V, cost int64) {
	if cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if token != c.epoch {
		return
	}
	if e, ok := c.items[k]; ok {
		old := e.Value.(*lruEntry[K, V])
		c.used += cost - old.cost
		old.val, old.cost = v, cost
		c.order.MoveToFront(e)
	} else {
		c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v, cost: cost})
		c.used += cost
	}
	for c.used > c.max {
		last := c.order.Back()
		ent := last.Value.(*lruEntry[K, V])
		c.order.Remove(last)
		delete(c.items, ent.key)
		c.used -= ent.cost
	}
}

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
		delete(c.items, k)
		c.used -= e.Value.(*lruEntry[K, V]).cost
	}
}

// clear removes every entry.
func (c *lru[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.order.Init()
	clear(c.items)
	c.used = 0
}

// clear empties every cache, after content was deleted behind their back.
func (c *cache) clear() {
	c.blobs.clear()
	c.links.clear()
	c.manifests.clear()
	c.tagLists.clear()
}

func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// CacheStats counts the lookups of one of a Registry's caches since it was
// made, and what it holds now.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
}

// CacheStats returns the counts of each cache by name: "blobs" (blob
// descriptors), "links" (repository links) and "manifests" (payloads).
func (r *Registry) CacheStats() map[string]CacheStats {
	return map[string]CacheStats{
		"blobs":     r.cache.blobs.stats(),
		"links":     r.cache.links.stats(),
		"manifests": r.cache.manifests.stats(),
	}
}

func (c *lru[K, V]) stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: c.len()}
}
