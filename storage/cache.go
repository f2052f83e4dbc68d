package storage

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// Cache bounds. Content is addressed by digest and never changes, so the
// only thing that invalidates an entry is a delete.
const (
	blobCacheEntries = 1 << 17 // digest → size and time, ~150 bytes each
	linkCacheEntries = 1 << 17 // repository link → target digest
	tagListCacheMax  = 1 << 18 // tag names, over all repositories
)

// StaleBound is the longest an instance may go on serving what another
// instance deleted, when no shared cache tells it sooner: a link it cached
// (a repository's layer or manifest) is read from storage again once it is
// this old, counted from when it was read.
const StaleBound = 2 * time.Second

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
// big they are, which repositories link them, and the bytes of manifests
// and small blobs (content.go).
//
// Content by digest (a blob's size, a manifest's payload) never changes,
// so those entries live until evicted, or until a garbage collection or a
// read that finds the content gone drops them; every use of them is gated
// by a link. A link (a repository's layer or manifest) can be deleted on
// another instance, so a cached one is read from storage again once it is
// StaleBound old, and every write that relies on one reads it from storage
// first (freshness). With a shared cache (SharedCache), links are looked
// up there instead, and a delete reaches every instance at once.
//
// What a tag points at is never cached: tags move, possibly on another
// instance. Only the sorted list of a repository's tag names is, on a file
// system, checked against its directory's modification time at every use
// (tags.go).
type cache struct {
	blobs    *lru[digest.Digest, blobInfo]
	links    *lru[linkKey, digest.Digest]
	content  *lru[digest.Digest, *content]
	tagLists *lru[string, tagList]
}

// newCache returns empty caches; blobs bounds the blob descriptors and
// contentBytes the bytes of content kept (0 for their defaults).
func newCache(now func() time.Time, blobs int, contentBytes int64) *cache {
	links := newLRU[linkKey, digest.Digest](linkCacheEntries)
	links.ttl, links.now = StaleBound, now
	if blobs <= 0 {
		blobs = blobCacheEntries
	}
	if contentBytes <= 0 {
		contentBytes = contentCacheMax
	}
	return &cache{
		blobs:    newLRU[digest.Digest, blobInfo](int64(blobs)),
		links:    links,
		content:  newLRU[digest.Digest, *content](contentBytes),
		tagLists: newLRU[string, tagList](tagListCacheMax),
	}
}

// freshness says whether a lookup may be answered from a cache.
type freshness bool

const (
	// cached: a read, which a cache may answer (within StaleBound, or at
	// once through a shared cache).
	cached freshness = false
	// fresh: what a write is about to rely on; storage answers, so nothing
	// deleted on another instance is taken for present.
	fresh freshness = true
)

// lru is a least-recently-used map bounded by the summed cost of its
// entries, safe for concurrent use. With a ttl, an entry is dropped once
// it is ttl old, counted from when the reader that added it began.
//
// A reader that misses reads the driver and then adds what it found. If a
// delete ran in between, that add would resurrect what the delete removed;
// so a reader takes a ticket (begin) before it reads the driver and the add
// is dropped when any removal happened since.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front: most recently used
	items map[K]*list.Element
	epoch uint64 // incremented by every removal

	ttl time.Duration    // 0: entries do not age
	now func() time.Time // set with ttl

	hits, misses atomic.Uint64 // lookups by get, for CacheStats
}

// ticket is what begin hands a reader: the removals seen so far, and when
// the read began.
type ticket struct {
	epoch uint64
	at    time.Time
}

type lruEntry[K comparable, V any] struct {
	key     K
	val     V
	cost    int64
	expires time.Time // zero without a ttl
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
	ent := e.Value.(*lruEntry[K, V])
	if c.ttl > 0 && !c.now().Before(ent.expires) {
		c.misses.Add(1)
		c.order.Remove(e)
		delete(c.items, k)
		c.used -= ent.cost
		var zero V
		return zero, false
	}
	c.hits.Add(1)
	c.order.MoveToFront(e)
	return ent.val, true
}

// begin returns the ticket to pass to add for what is read from now on.
func (c *lru[K, V]) begin() ticket {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := ticket{epoch: c.epoch}
	if c.ttl > 0 {
		t.at = c.now()
	}
	return t
}

// add stores v under k unless something was removed since the ticket was
// taken. An entry costing more than the whole budget is not stored.
func (c *lru[K, V]) add(t ticket, k K, v V, cost int64) {
	if cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.epoch != c.epoch {
		return
	}
	var expires time.Time
	if c.ttl > 0 {
		expires = t.at.Add(c.ttl)
	}
	if e, ok := c.items[k]; ok {
		old := e.Value.(*lruEntry[K, V])
		c.used += cost - old.cost
		old.val, old.cost, old.expires = v, cost, expires
		c.order.MoveToFront(e)
	} else {
		c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v, cost: cost, expires: expires})
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

// clear empties the caches of what exists, after content was deleted
// behind their back. The bytes of content stay: they were checked against
// their digest, and are only served once a link and the blob's presence
// were looked up again.
func (c *cache) clear() {
	c.blobs.clear()
	c.links.clear()
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
// descriptors), "links" (repository links) and "content" (the bytes of
// manifests and small blobs).
func (r *Registry) CacheStats() map[string]CacheStats {
	return map[string]CacheStats{
		"blobs":   r.cache.blobs.stats(),
		"links":   r.cache.links.stats(),
		"content": r.cache.content.stats(),
	}
}

func (c *lru[K, V]) stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: c.len()}
}
