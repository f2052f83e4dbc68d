// Package partbuftest checks, for the drivers' tests, that a writer that
// ended gave its part buffer back to the pool.
package partbuftest

import (
	"bytes"
	"context"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
)

// CheckGivenBack fails t unless the buffer whose first byte is first went
// back to pool exactly once, and the ended writer w leaves it alone when
// every method of it is called again, as a careless caller might: holds
// tells whether w still holds a buffer.
func CheckGivenBack(ctx context.Context, t testing.TB, pool *partbuf.Pool, first *byte, holds func() bool, w driver.FileWriter) {
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
	_, _ = w.Write([]byte("late"))
	_ = w.Close()
	_ = w.Commit(ctx)
	_ = w.Cancel(ctx)
	if bytes.Count(got, []byte{0xee}) != len(got) {
		t.Fatal("the ended writer changed the buffer it gave back")
	}
	if holds() {
		t.Fatal("the ended writer took a buffer again")
	}
}
