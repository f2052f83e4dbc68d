package storage

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// genCheckEvery is how often a server looks whether a garbage collection
// run by another process deleted content: that long, at most, its caches
// may still describe a deleted blob or manifest. A push is not misled
// meanwhile: the writes confirm what they reference (gcfence.go).
const genCheckEvery = 5 * time.Second

// genWatch remembers the last collection generation a Registry saw.
type genWatch struct {
	next    atomic.Int64 // UnixNano of the next check
	running atomic.Bool
	mu      sync.Mutex
	seen    string
	known   bool
}

// noticeCollections is called on cache lookups. At most every
// genCheckEvery, one lookup reads the generation a collection rewrites
// when it deleted something (a small read, traced as part of its
// request), and empties the caches when it changed.
func (r *Registry) noticeCollections(ctx context.Context) {
	now := time.Now().UnixNano()
	if now < r.gen.next.Load() || !r.gen.running.CompareAndSwap(false, true) {
		return
	}
	defer r.gen.running.Store(false)
	r.gen.next.Store(now + int64(genCheckEvery))
	r.checkGeneration(ctx)
}

func (r *Registry) checkGeneration(ctx context.Context) {
	b, err := driver.GetContent(ctx, r.driver, gcGenerationPath, 256)
	if err != nil && !isNotFound(err) {
		return // the backend's health is reported elsewhere; try later
	}
	r.gen.mu.Lock()
	changed := r.gen.known && string(b) != r.gen.seen
	r.gen.seen, r.gen.known = string(b), true
	r.gen.mu.Unlock()
	if changed {
		r.cache.clear()
		r.log.Info("caches emptied after a garbage collection", "generation", string(b))
	}
}
