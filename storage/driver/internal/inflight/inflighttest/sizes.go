package inflighttest

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Sizes is a Gauge that also notes the size of every request it counts,
// for the tests of a writer's plan (how it cuts a round into parts).
type Sizes struct {
	*Gauge

	mu    sync.Mutex
	sizes []int64
}

// NewSizes returns a Sizes holding each request up to hold, for want in
// all.
func NewSizes(hold time.Duration, want int) *Sizes {
	s := &Sizes{Gauge: NewGauge(hold)}
	s.Want = want
	return s
}

// Note notes a request of n bytes; the caller counts it in and out with
// Enter and Leave.
func (s *Sizes) Note(n int64) {
	s.mu.Lock()
	s.sizes = append(s.sizes, n)
	s.mu.Unlock()
}

// Take returns the sizes noted since the last Take, smallest first, and
// the most requests that were in flight at once.
func (s *Sizes) Take() ([]int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sizes := s.sizes
	s.sizes = nil
	slices.Sort(sizes)
	return sizes, s.Most()
}

// Check takes the sizes noted and fails t unless they are want (in any
// order) with most in flight at once; what names the requests ("parts",
// "blocks").
func (s *Sizes) Check(t testing.TB, what string, want []int64, most int) {
	t.Helper()
	sizes, got := s.Take()
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(sizes, want) {
		t.Errorf("%s of %v bytes, want %v", what, sizes, want)
	}
	if got != most {
		t.Errorf("%d %s in flight at most, want %d", got, what, most)
	}
}
