// Package partbuftest checks, for the drivers' tests, that a writer that
// ended gave its part buffer back to the pool.
package partbuftest

import (
	"bytes"
	"testing"

	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
)

// CheckGivenBack fails t unless the buffer whose first byte is first went
// back to pool exactly once, and the ended writer leaves it alone: holds
// tells whether the writer still holds a buffer, and late calls every
// method of the writer again, as a careless caller might.
func CheckGivenBack(t testing.TB, pool *partbuf.Pool, first *byte, holds func() bool, late func()) {
	t.Helper()
	if holds() {
		t.Fatal("the ended writer still holds its buffer")
	}
	got, next := pool.Get(), pool.Get()
	defer pool.Put(next)
	defer pool.Put(got)
	if &got[:1][0] != first {
		t.Fatal("the writer's buffer is not back in the pool")
	}
	if &next[:1][0] == first {
		t.Fatal("the writer's buffer went back to the pool twice")
	}
	// The buffer is now another writer's.
	got = got[:cap(got)]
	for i := range got {
		got[i] = 0xee
	}
	late()
	if bytes.Count(got, []byte{0xee}) != len(got) {
		t.Fatal("the ended writer changed the buffer it gave back")
	}
	if holds() {
		t.Fatal("the ended writer took a buffer again")
	}
}
