package s3

import (
	"slices"
	"sync"
	"time"
)

// A writer closed with a tail stores it in the state object, for a writer
// in any process to resume. The next request of a push mostly comes to
// the same process moments later (docker's PUT after its PATCH), and the
// writer reopened there would read the tail back: the request a small
// layer's whole content costs twice. So a closed writer keeps a copy of
// its tail for Reopen, for a while and within a budget.
const (
	// keptTailMemory bounds the tails the driver's closed writers keep.
	keptTailMemory = 16 << 20
	// keptTailFor is how long a closed writer keeps its tail: a push
	// that does not come back by then reads it from the state object.
	keptTailFor = 30 * time.Second
)

// keptTail is the tail a closed writer stored, while it is kept.
type keptTail struct {
	d *Driver

	mu    sync.Mutex
	b     []byte
	timer *time.Timer
}

// keepTail keeps a copy of tail for Reopen, when the budget allows.
func (w *writer) keepTail(tail []byte) {
	n := int64(len(tail))
	if n == 0 || !w.d.kept.TryAcquire(n) {
		return
	}
	k := &keptTail{d: w.d, b: slices.Clone(tail)}
	k.mu.Lock()
	k.timer = time.AfterFunc(keptTailFor, func() { _ = k.take() })
	k.mu.Unlock()
	w.kept = k
}

// take returns the tail and gives its memory back to the budget; nil once
// taken or expired.
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
	k.d.kept.Release(int64(len(b)))
	return b
}
