// Package inflighttest is what the tests of writers that keep several
// requests in flight (S3 parts, Azure blocks) share.
package inflighttest

import (
	"sync"
	"time"
)

// Gauge counts the requests in flight at a test's proxy in front of a
// store, and the most at once. An entering request waits (up to Hold)
// for a second one (or Want), so that a writer able to keep two in flight
// is seen doing it.
type Gauge struct {
	// Hold and Want are set before the first request; Want under 2
	// means 2.
	Hold time.Duration
	Want int

	mu      sync.Mutex
	changed *sync.Cond
	active  int
	most    int
}

// NewGauge returns a Gauge holding each request up to hold.
func NewGauge(hold time.Duration) *Gauge {
	g := &Gauge{Hold: hold}
	g.changed = sync.NewCond(&g.mu)
	return g
}

// Enter counts a request in, and waits up to Hold for another (for Want
// in all).
func (g *Gauge) Enter() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active++
	g.most = max(g.most, g.active)
	g.changed.Broadcast()
	deadline := time.Now().Add(g.Hold)
	stop := time.AfterFunc(g.Hold, func() { g.mu.Lock(); g.changed.Broadcast(); g.mu.Unlock() })
	defer stop.Stop()
	for g.active < max(2, g.Want) && time.Now().Before(deadline) {
		g.changed.Wait()
	}
}

// Leave counts a request out.
func (g *Gauge) Leave() {
	g.mu.Lock()
	g.active--
	g.mu.Unlock()
}

// Most is the most requests that were in flight at once.
func (g *Gauge) Most() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most
}
