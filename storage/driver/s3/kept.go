package s3

import (
	"sync"
	"time"
)

// A writer closed with a tail stores it in the state object, for a writer
// in any process to resume. The next request of a push mostly comes to
// the same process moments later (docker's PUT after its PATCH), and the
// writer reopened there would read the tail back: the request a small
// layer's whole content costs twice. So a closed writer keeps its tail for
// Reopen, for a while and within a budget.
//
// The tail is kept in the writer's own buffer, handed over rather than
// copied, and the reopened writer goes on in that buffer. Copied out at
// Close and back in at Reopen, a layer's megabyte cost two copies and a
// fresh megabyte of heap each time: about 4 % of Berth's CPU in a docker
// push on S3, and most of what it allocated, so most of its collections.
// The buffer's pages past the tail go back to the kernel (partbuf's Trim),
// so a kept tail holds about its own size of memory; each counts at least
// keptTailLeast against the budget, which bounds the chunksize mappings
// kept tails hold.
const (
	// keptTailMemory bounds the tails the driver's closed writers keep.
	keptTailMemory = 16 << 20
	// keptTailLeast is the least a kept tail counts against keptTailMemory.
	keptTailLeast = 1 << 20
	// keptTailFor is how long a closed writer keeps its tail: a push
	// that does not come back by then reads it from the state object.
	keptTailFor = 30 * time.Second
)

// keptTail is the tail a closed writer stored, while it is kept.
type keptTail struct {
	d *Driver

	mu     sync.Mutex
	b      []byte // a buffer of d.bufs, or the heap's (readState)
	weight int64  // counted against d.kept
	timer  *time.Timer
}

// keepTail keeps the writer's buffer, the tail Close stored, for Reopen,
// when the budget allows; the writer no longer has a buffer then.
func (w *writer) keepTail() {
	tail := *w.buf
	weight := max(int64(len(tail)), keptTailLeast)
	if len(tail) == 0 || !w.d.kept.TryAcquire(weight) {
		return
	}
	w.d.bufs.Trim(tail)
	w.tail, w.buf = int64(len(tail)), nil
	k := &keptTail{d: w.d, b: tail, weight: weight}
	k.mu.Lock()
	k.timer = time.AfterFunc(keptTailFor, k.drop)
	k.mu.Unlock()
	w.kept = k
}

// drop gives a tail no Reopen took back to the pool.
func (k *keptTail) drop() {
	if b := k.take(); b != nil {
		k.d.bufs.Put(b)
	}
}

// take returns the tail, the caller's from then on, and gives its weight
// back to the budget; nil once taken or expired.
func (k *keptTail) take() []byte {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.b
	if b == nil {
		return nil
	}
	k.b = nil
	k.timer.Stop()
	k.d.kept.Release(k.weight)
	return b
}
